/* credaudit evidence page: pages, filters and sorts the tables held in the data blocks (JSON,
   deflated and base64-encoded; inflated here by the browser's DecompressionStream).
   Every string from the data is inserted with textContent / createTextNode, never as markup.
   The Content-Security-Policy names this script by its SHA-256: it is inserted verbatim. */
(function () {
  "use strict";

  var BLOCKS = ["data-strings", "data-findings", "data-actions", "data-inventory", "data-events",
    "data-controls"];

  /** The data of one block: base64 of zlib-deflated JSON; null when the page has no such block.
      The element is removed once read, so the page does not keep its text twice. */
  function readBlock(id) {
    var node = document.getElementById(id);
    if (!node) return Promise.resolve(null);
    var text = atob(node.textContent);
    node.remove();
    var bytes = new Uint8Array(text.length);
    for (var k = 0; k < text.length; k++) bytes[k] = text.charCodeAt(k);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).json();
  }

  function showError(error) {
    // Say so on the page rather than leave empty tables; the data files beside it still hold
    // everything.
    document.body.dataset.ready = "error";
    var banner = document.createElement("div");
    banner.className = "banner error";
    banner.setAttribute("role", "alert");
    banner.textContent = "The interactive tables could not be shown (" + String(error) +
      "). The same data is in the CSV and JSON files beside this page.";
    var main = document.querySelector("main");
    if (main) main.insertBefore(banner, main.firstChild);
  }

  var loaded;
  try {
    loaded = Promise.all(BLOCKS.map(readBlock));
  } catch (error) {
    showError(error);
    throw error;
  }
  loaded.then(function (blocks) {
    var data = {};
    BLOCKS.forEach(function (id, k) { data[id] = blocks[k]; });
    try {
      start(data);
    } catch (error) {
      showError(error);
      throw error;
    }
  }, function (error) {
    showError(error);
    throw error;
  });

  /** Builds the tables from the inflated data blocks. */
  function start(DATA) {
    var PAGE_SIZE = 100;
    var SEVERITIES = ["critical", "high", "medium", "low", "info"];

    function byId(id) {
      return document.getElementById(id);
    }

    function readJson(id) {
      return DATA[id] || null;
    }

    function el(tag, cls, text) {
      var node = document.createElement(tag);
      if (cls) node.className = cls;
      if (text !== undefined && text !== null) node.textContent = String(text);
      return node;
    }

    function fmt(n) {
      return Number(n).toLocaleString("en-US");
    }

    function badge(cls, text) {
      return el("span", "badge " + cls, text);
    }

    var S = readJson("data-strings") || [];
    var lowered = null;
    var idsByString = null;

    /** Index of a string in the table, or -1. */
    function stringId(s) {
      if (!idsByString) {
        idsByString = new Map();
        for (var k = 0; k < S.length; k++) idsByString.set(S[k], k);
      }
      var id = idsByString.get(s);
      return id === undefined ? -1 : id;
    }

    var ranks = null;

    /** Each string's position in text order (the table is in order of use). */
    function stringRanks() {
      if (!ranks) {
        var order = new Array(S.length);
        for (var k = 0; k < S.length; k++) order[k] = k;
        order.sort(function (a, b) { return S[a] < S[b] ? -1 : S[a] > S[b] ? 1 : 0; });
        ranks = new Int32Array(S.length);
        for (var r = 0; r < order.length; r++) ranks[order[r]] = r;
      }
      return ranks;
    }

    /** For a query, which strings of the table contain it (case-insensitive). */
    function textHits(query) {
      if (!lowered) lowered = S.map(function (s) { return s.toLowerCase(); });
      var q = query.toLowerCase();
      var hit = new Uint8Array(S.length);
      for (var k = 0; k < lowered.length; k++) {
        if (lowered[k].indexOf(q) !== -1) hit[k] = 1;
      }
      return hit;
    }

    function splitList(value) {
      return value ? value.split(",").map(function (s) { return s.trim(); }).filter(Boolean) : [];
    }

    /** Each row's position in text order for a column holding its text ("text" columns); equal
        texts share a position. */
    function textRanks(values) {
      var order = new Array(values.length);
      for (var k = 0; k < values.length; k++) order[k] = k;
      order.sort(function (a, b) { return values[a] < values[b] ? -1 : values[a] > values[b] ? 1 : a - b; });
      var keys = new Float64Array(values.length);
      for (var r = 0; r < order.length; r++) {
        var same = r > 0 && values[order[r]] === values[order[r - 1]];
        keys[order[r]] = same ? keys[order[r - 1]] : r;
      }
      return keys;
    }

    /**
     * A paged, filterable, sortable table over one columnar block.
     * columns: {label, key, type: "str"|"text"|"int"|"dec"|"sev"|"bool", cls, cell(td, i)}
     * ("str" values are indexes into the string table, "text" values the text itself)
     */
    function Table(opts) {
      this.o = opts;
      this.d = opts.data;
      this.n = opts.data.n;
      this.q = "";
      this.sortKey = "";
      this.sortDir = 1;
      this.page = 0;
      this.order = null;
      this.rows = [];
      this.open = new Set();
      this.textCols = (opts.text || []).map(function (k) { return opts.data[k]; });
      this.listCols = (opts.lists || []).map(function (k) { return opts.data[k]; });
      this.plainCols = (opts.plain || []).map(function (k) { return opts.data[k]; });
      this.plainLower = null;
      this.table = byId(opts.id + "-table");
      this.pager = byId(opts.id + "-pager");
      this.countEl = byId(opts.id + "-count");
      this.build();
    }

    Table.prototype.build = function () {
      var self = this;
      var thead = el("thead");
      var tr = el("tr");
      this.headers = [];
      this.o.columns.forEach(function (col) {
        var th = el("th", col.type === "int" || col.type === "dec" ? "num" : "");
        th.setAttribute("scope", "col");
        var button = el("button", "sort", col.label);
        button.type = "button";
        button.addEventListener("click", function () {
          if (self.sortKey === col.key) {
            self.sortDir = -self.sortDir;
          } else {
            self.sortKey = col.key;
            self.sortDir = 1;
          }
          self.order = null;
          self.page = 0;
          self.refresh();
          if (self.o.onChange) self.o.onChange();
        });
        th.appendChild(button);
        tr.appendChild(th);
        self.headers.push({ th: th, key: col.key });
      });
      thead.appendChild(tr);
      this.tbody = el("tbody");
      this.table.replaceChildren(thead, this.tbody);
      this.tbody.addEventListener("click", function (event) {
        var row = event.target.closest("tr.row");
        if (!row || event.target.closest("a, button")) return;
        self.toggle(Number(row.dataset.i));
      });
      this.tbody.addEventListener("keydown", function (event) {
        var row = event.target.closest("tr.row");
        if (row && (event.key === "Enter" || event.key === " ")) {
          event.preventDefault();
          self.toggle(Number(row.dataset.i));
        }
      });
    };

    Table.prototype.toggle = function (i) {
      if (!this.o.detail) return;
      if (this.open.has(i)) this.open.delete(i);
      else this.open.add(i);
      this.render();
    };

    Table.prototype.sortKeys = function (col) {
      var values = this.d[col.key];
      if (col.type === "text") return textRanks(values);
      var rank = col.type === "str" ? stringRanks() : null;
      var keys = new Float64Array(this.n);
      for (var i = 0; i < this.n; i++) {
        var v = values[i];
        if (rank) keys[i] = rank[v];
        else keys[i] = v === null || v === undefined ? -Infinity : Number(v);
      }
      return keys;
    };

    /** Row indexes in display order, before filtering. */
    Table.prototype.sorted = function () {
      if (this.order) return this.order;
      var order = new Array(this.n);
      for (var i = 0; i < this.n; i++) order[i] = i;
      var self = this;
      var col = this.o.columns.find(function (c) { return c.key === self.sortKey; });
      if (col) {
        var keys = this.sortKeys(col);
        var dir = this.sortDir;
        order.sort(function (a, b) {
          return (keys[a] - keys[b]) * dir || a - b;
        });
      }
      this.order = order;
      return order;
    };

    Table.prototype.matchesText = function (i, hit, q) {
      if (!this.plainLower) {
        this.plainLower = this.plainCols.map(function (col) {
          return col.map(function (s) { return s.toLowerCase(); });
        });
      }
      for (var p = 0; p < this.plainLower.length; p++) {
        if (this.plainLower[p][i].indexOf(q) !== -1) return true;
      }
      for (var c = 0; c < this.textCols.length; c++) {
        if (hit[this.textCols[c][i]]) return true;
      }
      for (var l = 0; l < this.listCols.length; l++) {
        var list = this.listCols[l][i];
        for (var k = 0; k < list.length; k++) if (hit[list[k]]) return true;
      }
      return false;
    };

    Table.prototype.refresh = function () {
      var order = this.sorted();
      var hit = this.q ? textHits(this.q) : null;
      var q = this.q.toLowerCase();
      var filter = this.o.filter ? this.o.filter() : null;
      var rows = [];
      for (var k = 0; k < order.length; k++) {
        var i = order[k];
        if (filter && !filter(i)) continue;
        if (hit && !this.matchesText(i, hit, q)) continue;
        rows.push(i);
      }
      this.rows = rows;
      var pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
      if (this.page >= pages) this.page = pages - 1;
      this.render();
    };

    Table.prototype.cell = function (col, td, i) {
      var v = this.d[col.key][i];
      if (col.cell) {
        col.cell(td, i, v);
      } else if (col.type === "str") {
        td.textContent = S[v];
      } else if (col.type === "text") {
        td.textContent = v;
      } else if (col.type === "sev") {
        td.appendChild(badge("sev-" + SEVERITIES[v], SEVERITIES[v]));
      } else if (col.type === "bool") {
        td.textContent = v ? "yes" : "no";
      } else if (col.type === "dec") {
        td.textContent = v === null ? "" : v.toFixed(1);
      } else {
        td.textContent = String(v);
      }
    };

    Table.prototype.render = function () {
      var self = this;
      var cols = this.o.columns;
      var start = this.page * PAGE_SIZE;
      var slice = this.rows.slice(start, start + PAGE_SIZE);
      var frag = document.createDocumentFragment();
      slice.forEach(function (i) {
        var tr = el("tr", "row");
        tr.dataset.i = String(i);
        if (self.o.detail) {
          tr.tabIndex = 0;
          tr.setAttribute("aria-expanded", self.open.has(i) ? "true" : "false");
        }
        cols.forEach(function (col) {
          var td = el("td", col.cls || (col.type === "int" || col.type === "dec" ? "num" : ""));
          self.cell(col, td, i);
          tr.appendChild(td);
        });
        frag.appendChild(tr);
        if (self.open.has(i)) {
          var detail = el("tr", "detail");
          var td = el("td");
          td.colSpan = cols.length;
          td.appendChild(self.o.detail(i));
          detail.appendChild(td);
          frag.appendChild(detail);
        }
      });
      if (!slice.length) {
        var empty = el("tr");
        var td = el("td", "note", this.n ? "No rows match the filter." : "Nothing to show.");
        td.colSpan = cols.length;
        empty.appendChild(td);
        frag.appendChild(empty);
      }
      this.tbody.replaceChildren(frag);
      this.headers.forEach(function (h) {
        if (h.key === self.sortKey) {
          h.th.setAttribute("aria-sort", self.sortDir > 0 ? "ascending" : "descending");
        } else {
          h.th.removeAttribute("aria-sort");
        }
      });
      if (this.countEl) {
        this.countEl.textContent = fmt(this.rows.length) + " of " + fmt(this.n) + " " + this.o.noun;
      }
      this.renderPager();
    };

    Table.prototype.renderPager = function () {
      var self = this;
      var total = this.rows.length;
      var pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
      var prev = el("button", "btn", "\u2039 previous");
      prev.type = "button";
      prev.disabled = this.page === 0;
      prev.addEventListener("click", function () { self.go(self.page - 1); });
      var next = el("button", "btn", "next \u203a");
      next.type = "button";
      next.disabled = this.page >= pages - 1;
      next.addEventListener("click", function () { self.go(self.page + 1); });
      var first = total ? this.page * PAGE_SIZE + 1 : 0;
      var last = Math.min(total, (this.page + 1) * PAGE_SIZE);
      var label = el("span", "", "rows " + fmt(first) + "\u2013" + fmt(last) + " of " + fmt(total) +
        " \u00b7 page " + fmt(this.page + 1) + " of " + fmt(pages));
      this.pager.replaceChildren(prev, label, next);
    };

    Table.prototype.go = function (page) {
      this.page = page;
      this.render();
      this.table.scrollIntoView({ block: "start" });
    };

    function kv(pairs) {
      var dl = el("dl", "kv");
      pairs.forEach(function (p) {
        if (p[1] === "" || p[1] === null || p[1] === undefined) return;
        dl.appendChild(el("dt", "", p[0]));
        var dd = el("dd", p[2] || "");
        dd.textContent = p[1];
        dl.appendChild(dd);
      });
      return dl;
    }

    function wireText(input, table, onChange) {
      var timer = 0;
      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          table.q = input.value.trim();
          table.page = 0;
          table.refresh();
          if (onChange) onChange();
        }, 150);
      });
    }

    /** Sets a select to `value`, adding an option for a value the page does not list. */
    function setSelect(select, value) {
      var found = Array.prototype.some.call(select.options, function (o) { return o.value === value; });
      if (!found) {
        var option = el("option", "", value);
        option.value = value;
        select.appendChild(option);
      }
      select.value = value;
    }

    // ---- findings -------------------------------------------------------------------------------

    var F = readJson("data-findings");
    var C = readJson("data-controls");
    var controlIndex = new Map();
    for (var c = 0; c < C.n; c++) controlIndex.set(S[C.key[c]], c);
    var controlsByRule = null;

    function controlsOfRule(ruleId) {
      if (!controlsByRule) {
        controlsByRule = new Map();
        for (var k = 0; k < C.n; k++) {
          C.rules[k].forEach(function (r) {
            if (!controlsByRule.has(r)) controlsByRule.set(r, []);
            controlsByRule.get(r).push(S[C.key[k]]);
          });
        }
      }
      return controlsByRule.get(ruleId) || [];
    }

    var state = { severity: "", rule: "", control: "", status: "" };

    var findings = new Table({
      id: "findings",
      data: F,
      noun: "findings",
      text: ["rule", "credential", "principal", "kind", "account", "region", "owner", "message", "fingerprint"],
      lists: ["evidence"],
      columns: [
        {
          label: "Severity", key: "severity", type: "sev",
          cell: function (td, i, v) {
            td.appendChild(badge("sev-" + SEVERITIES[v], SEVERITIES[v]));
            if (F.waiver[i].length) {
              td.appendChild(document.createTextNode(" "));
              td.appendChild(badge("st-waived", "waived"));
            }
          }
        },
        { label: "Rule", key: "rule", type: "str", cls: "mono nowrap" },
        { label: "Credential", key: "credential", type: "str", cls: "mono breakall" },
        { label: "Principal", key: "principal", type: "str", cls: "mono breakall" },
        { label: "Kind", key: "kind", type: "str", cls: "nowrap" },
        { label: "Account", key: "account", type: "str", cls: "mono nowrap" },
        { label: "Region", key: "region", type: "str", cls: "nowrap" },
        { label: "Owner", key: "owner", type: "str", cls: "nowrap" },
        { label: "Message", key: "message", type: "str" }
      ],
      filter: function () {
        var severities = splitList(state.severity).map(function (s) { return SEVERITIES.indexOf(s); });
        var rules = null;
        if (state.rule) rules = new Set(splitList(state.rule).map(stringId));
        if (state.control) {
          var k = controlIndex.get(state.control);
          var controlRules = new Set(k === undefined ? [] : C.rules[k]);
          rules = rules ? new Set(Array.from(rules).filter(function (r) { return controlRules.has(r); })) : controlRules;
        }
        var status = state.status;
        if (!severities.length && !rules && !status) return null;
        return function (i) {
          if (status && (F.waiver[i].length > 0) !== (status === "waived")) return false;
          if (severities.length && severities.indexOf(F.severity[i]) === -1) return false;
          if (rules && !rules.has(F.rule[i])) return false;
          return true;
        };
      },
      detail: function (i) {
        var box = el("div");
        box.appendChild(kv([
          ["Fingerprint", S[F.fingerprint[i]], "mono"],
          ["Kind", S[F.kind[i]]],
          ["Controls", controlsOfRule(F.rule[i]).join(", "), "mono"]
        ]));
        var w = F.waiver[i];
        if (w.length) {
          box.appendChild(el("strong", "", "Waived"));
          box.appendChild(kv([
            ["Ticket", S[w[0]], "mono"],
            ["Approver", S[w[1]]],
            ["Reason", S[w[2]]],
            ["Expires", S[w[3]], "mono"]
          ]));
        }
        var ev = F.evidence[i];
        if (ev.length) {
          box.appendChild(el("strong", "", "Evidence"));
          var pairs = [];
          for (var k = 0; k + 1 < ev.length; k += 2) pairs.push([S[ev[k]], S[ev[k + 1]], "mono"]);
          box.appendChild(kv(pairs));
        }
        return box;
      },
      onChange: writeHash
    });

    var qInput = byId("findings-q");
    var severitySelect = byId("findings-severity");
    var ruleSelect = byId("findings-rule");
    var controlChip = byId("findings-control");
    var statusSelect = byId("findings-status");

    function renderControlChip() {
      var k = state.control ? controlIndex.get(state.control) : undefined;
      if (!state.control) {
        controlChip.hidden = true;
        controlChip.replaceChildren();
        return;
      }
      var head = el("div");
      head.appendChild(el("strong", "", "Control " + state.control));
      if (k !== undefined) {
        head.appendChild(document.createTextNode(" \u2014 " + S[C.title[k]] + " "));
        head.appendChild(badge("st-" + S[C.status[k]], S[C.status[k]]));
        head.appendChild(document.createTextNode(" \u00b7 rules: " +
          C.rules[k].map(function (r) { return S[r]; }).join(", ")));
      } else {
        head.appendChild(document.createTextNode(" (not in this report)"));
      }
      var clear = el("button", "btn", "clear");
      clear.type = "button";
      clear.addEventListener("click", function () {
        state.control = "";
        applyFindings();
      });
      head.appendChild(clear);
      var parts = [head];
      if (k !== undefined && C.failing[k].length) {
        var failing = C.failing[k];
        parts.push(el("div", "note", fmt(failing.length) + " failing credential" +
          (failing.length === 1 ? "" : "s") + (failing.length > 200 ? " (first 200 shown)" : "") + ":"));
        var ul = el("ul", "mono");
        failing.slice(0, 200).forEach(function (id) { ul.appendChild(el("li", "", S[id])); });
        parts.push(ul);
      }
      controlChip.replaceChildren.apply(controlChip, parts);
      controlChip.hidden = false;
    }

    function applyFindings() {
      findings.page = 0;
      renderControlChip();
      findings.refresh();
      writeHash();
    }

    var lastHash = null;

    function writeHash() {
      var p = new URLSearchParams();
      if (findings.q) p.set("q", findings.q);
      if (state.severity) p.set("severity", state.severity);
      if (state.rule) p.set("rule", state.rule);
      if (state.control) p.set("control", state.control);
      if (state.status) p.set("status", state.status);
      if (findings.sortKey) {
        p.set("sort", findings.sortKey);
        p.set("dir", findings.sortDir > 0 ? "asc" : "desc");
      }
      var hash = p.toString();
      hash = hash ? "#" + hash : "";
      if (hash === location.hash || (!hash && !location.hash)) return;
      lastHash = hash;
      try {
        history.replaceState(null, "", hash || location.pathname + location.search);
      } catch (e) {
        if (hash) location.replace(hash);
      }
    }

    /** Reads the findings filter from the URL fragment, e.g. #q=prod%2Fdb&severity=high. */
    function readHash() {
      var raw = location.hash.replace(/^#/, "");
      // Only a fragment made of our parameters is a filter; others (#findings) are anchors.
      var p = new URLSearchParams(raw);
      var known = ["q", "severity", "rule", "control", "status", "sort", "dir"];
      var isFilter = raw.indexOf("=") !== -1 && Array.from(p.keys()).some(function (k) { return known.indexOf(k) !== -1; });
      if (!isFilter) return false;
      findings.q = (p.get("q") || "").trim();
      state.severity = p.get("severity") || "";
      state.rule = p.get("rule") || "";
      state.control = p.get("control") || "";
      state.status = p.get("status") || "";
      var sort = p.get("sort") || "";
      findings.sortKey = findings.o.columns.some(function (c) { return c.key === sort; }) ? sort : "";
      findings.sortDir = p.get("dir") === "desc" ? -1 : 1;
      findings.order = null;
      qInput.value = findings.q;
      setSelect(severitySelect, state.severity);
      setSelect(ruleSelect, state.rule);
      setSelect(statusSelect, state.status);
      return true;
    }

    wireText(qInput, findings, writeHash);
    severitySelect.addEventListener("change", function () {
      state.severity = severitySelect.value;
      applyFindings();
    });
    ruleSelect.addEventListener("change", function () {
      state.rule = ruleSelect.value;
      applyFindings();
    });
    statusSelect.addEventListener("change", function () {
      state.status = statusSelect.value;
      applyFindings();
    });
    document.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-control]");
      if (!button) return;
      state.control = button.getAttribute("data-control") || "";
      state.rule = "";
      setSelect(ruleSelect, "");
      applyFindings();
      byId("findings").scrollIntoView({ block: "start" });
    });
    window.addEventListener("hashchange", function () {
      if (location.hash === lastHash) return;
      if (readHash()) {
        findings.page = 0;
        renderControlChip();
        findings.refresh();
      }
    });

    // ---- remediation plan -----------------------------------------------------------------------

    var A = readJson("data-actions");
    var planSeverity = byId("plan-severity");
    var plan = new Table({
      id: "plan",
      data: A,
      noun: "actions",
      text: ["action", "credential", "kind", "account", "region", "owner", "due", "description", "command"],
      lists: ["rules", "controls"],
      columns: [
        { label: "#", key: "priority", type: "int" },
        { label: "Due", key: "due", type: "str", cls: "mono nowrap" },
        { label: "Severity", key: "severity", type: "sev" },
        { label: "Action", key: "action", type: "str", cls: "nowrap" },
        { label: "Credential", key: "credential", type: "str", cls: "mono breakall" },
        { label: "Owner", key: "owner", type: "str", cls: "nowrap" },
        { label: "Account", key: "account", type: "str", cls: "mono nowrap" },
        { label: "What to do", key: "description", type: "str" }
      ],
      filter: function () {
        var s = SEVERITIES.indexOf(planSeverity.value);
        if (s === -1) return null;
        return function (i) { return A.severity[i] === s; };
      },
      detail: function (i) {
        return kv([
          ["Command", S[A.command[i]], "mono"],
          ["Region", S[A.region[i]]],
          ["Kind", S[A.kind[i]]],
          ["Resolves rules", A.rules[i].map(function (r) { return S[r]; }).join(", "), "mono"],
          ["Restores controls", A.controls[i].map(function (r) { return S[r]; }).join(", "), "mono"]
        ]);
      }
    });
    wireText(byId("plan-q"), plan);
    planSeverity.addEventListener("change", function () {
      plan.page = 0;
      plan.refresh();
    });

    // ---- inventory ------------------------------------------------------------------------------

    var I = readJson("data-inventory");
    var reconciliationSelect = byId("inventory-reconciliation");
    var inventory = new Table({
      id: "inventory",
      data: I,
      noun: "credentials",
      text: ["credential", "kind", "reconciliation", "class", "owner", "account", "region", "principal", "consumers"],
      columns: [
        { label: "Credential", key: "credential", type: "str", cls: "mono breakall" },
        { label: "Kind", key: "kind", type: "str", cls: "nowrap" },
        {
          label: "Reconciliation", key: "reconciliation", type: "str",
          cell: function (td, i, v) { td.appendChild(badge("st-" + S[v], S[v])); }
        },
        { label: "Class", key: "class", type: "str" },
        {
          label: "Owner", key: "owner", type: "str", cls: "nowrap",
          cell: function (td, i, v) {
            td.textContent = S[v];
            var status = S[I.owner_status[i]];
            if (status && status !== "active") td.appendChild(el("div", "note", status));
          }
        },
        { label: "Account", key: "account", type: "str", cls: "mono nowrap" },
        { label: "Principal", key: "principal", type: "str" },
        { label: "Status", key: "status", type: "str" },
        { label: "Automated", key: "automated", type: "bool" },
        { label: "Age (days)", key: "age_days", type: "dec" },
        { label: "Interval", key: "interval_days", type: "int" },
        { label: "Findings", key: "findings", type: "int" }
      ],
      filter: function () {
        var r = reconciliationSelect.value;
        if (!r) return null;
        var id = stringId(r);
        return function (i) { return I.reconciliation[i] === id; };
      },
      detail: function (i) {
        return kv([
          ["Declared", I.declared[i] ? "yes" : "no"],
          ["Observed", I.observed[i] ? "yes" : "no"],
          ["Region", S[I.region[i]]],
          ["Owner status", S[I.owner_status[i]]],
          ["Consumers", S[I.consumers[i]]],
          ["Last rotation", S[I.last_rotation[i]], "mono"],
          ["Last used", S[I.last_used[i]], "mono"]
        ]);
      }
    });
    wireText(byId("inventory-q"), inventory);
    reconciliationSelect.addEventListener("change", function () {
      inventory.page = 0;
      inventory.refresh();
    });

    // ---- rotation history -----------------------------------------------------------------------

    var E = readJson("data-events");
    var history_ = new Table({
      id: "history",
      data: E,
      noun: "events",
      text: ["credential", "event_type", "trigger", "source"],
      plain: ["time", "fingerprint", "details"],
      columns: [
        { label: "Time", key: "time", type: "text", cls: "mono nowrap" },
        { label: "Credential", key: "credential", type: "str", cls: "mono breakall" },
        { label: "Event", key: "event_type", type: "str", cls: "nowrap" },
        { label: "Trigger", key: "trigger", type: "str" },
        { label: "Fingerprint", key: "fingerprint", type: "text", cls: "mono breakall" },
        { label: "Source", key: "source", type: "str" },
        { label: "Details", key: "details", type: "text" }
      ]
    });
    wireText(byId("history-q"), history_);

    // ---- first render ---------------------------------------------------------------------------

    readHash();
    renderControlChip();
    findings.refresh();
    plan.refresh();
    inventory.refresh();
    history_.refresh();
    document.body.dataset.ready = "1";
  }
})();
