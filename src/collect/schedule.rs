//! Turns a Secrets Manager rotation `ScheduleExpression` into an approximate rotation interval in
//! days, the number the rules compare with the declared interval.

/// The approximate number of days between rotations for a Secrets Manager schedule expression,
/// or `None` when the expression is not one Secrets Manager accepts.
///
/// - `rate(N days)` → N; `rate(N hours)` → N/24 rounded up, at least 1.
/// - `cron(minutes hours day-of-month month day-of-week year)`, first match wins:
///   - month `*/N` → N × 30;
///   - day-of-month a list of k day numbers (`1,15`) → 31/k rounded up;
///   - day-of-month `*/N` → N;
///   - day-of-month `*` or `?` with day-of-week a single day (`MON`, `2`) → 7;
///   - day-of-month and day-of-week both `*` or `?` → 1;
///   - anything else (ranges, `L`, `W`, `#`, lists of weekdays) → 30.
pub fn schedule_interval_days(expr: &str) -> Option<u32> {
    let expr = expr.trim();
    if let Some(body) = strip_call(expr, "rate") {
        return rate_interval_days(body);
    }
    if let Some(body) = strip_call(expr, "cron") {
        return cron_interval_days(body);
    }
    None
}

/// The text between `name(` and the final `)`.
fn strip_call<'a>(expr: &'a str, name: &str) -> Option<&'a str> {
    expr.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
        .map(str::trim)
}

fn rate_interval_days(body: &str) -> Option<u32> {
    let mut parts = body.split_whitespace();
    let count: u32 = parts.next()?.parse().ok()?;
    let unit = parts.next()?;
    if parts.next().is_some() || count == 0 {
        return None;
    }
    match unit {
        "day" | "days" => Some(count),
        "hour" | "hours" => Some(count.div_ceil(24).max(1)),
        _ => None,
    }
}

fn cron_interval_days(body: &str) -> Option<u32> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [_minutes, _hours, day_of_month, month, day_of_week, _year] = fields[..] else {
        return None;
    };
    if let Some(step) = month.strip_prefix("*/") {
        let months: u32 = step.parse().ok().filter(|n| (1..=12).contains(n))?;
        return Some(months * 30);
    }
    if let Some(days) = day_number_list(day_of_month) {
        return Some(31u32.div_ceil(days));
    }
    if let Some(step) = day_of_month.strip_prefix("*/") {
        return step.parse().ok().filter(|n| (1..=31).contains(n));
    }
    let any = |field: &str| field == "*" || field == "?";
    if any(day_of_month) && is_single_weekday(day_of_week) {
        return Some(7);
    }
    if any(day_of_month) && any(day_of_week) {
        return Some(1);
    }
    Some(30)
}

/// How many days a day-of-month list of plain numbers (`1,15`) names.
fn day_number_list(field: &str) -> Option<u32> {
    let mut count = 0;
    for item in field.split(',') {
        let day: u32 = item.parse().ok()?;
        if !(1..=31).contains(&day) {
            return None;
        }
        count += 1;
    }
    Some(count)
}

fn is_single_weekday(field: &str) -> bool {
    const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    matches!(field.parse::<u32>(), Ok(1..=7))
        || NAMES.contains(&field.to_ascii_uppercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::schedule_interval_days as days;

    #[test]
    fn rate_expressions() {
        assert_eq!(days("rate(30 days)"), Some(30));
        assert_eq!(days("rate(1 day)"), Some(1));
        assert_eq!(days("rate(4 hours)"), Some(1));
        assert_eq!(days("rate(49 hours)"), Some(3));
        assert_eq!(days(" rate( 10 days ) "), Some(10));
        assert_eq!(days("rate(0 days)"), None);
        assert_eq!(days("rate(10 weeks)"), None);
        assert_eq!(days("rate(days)"), None);
    }

    #[test]
    fn cron_expressions() {
        // The awscli describe-secret example: the 1st and the 15th of each month.
        assert_eq!(days("cron(0 16 1,15 * ? *)"), Some(16));
        assert_eq!(days("cron(0 0 1 * ? *)"), Some(31));
        assert_eq!(days("cron(0 8 ? * MON *)"), Some(7));
        assert_eq!(days("cron(0 8 ? * 2 *)"), Some(7));
        assert_eq!(days("cron(0 4 * * ? *)"), Some(1));
        assert_eq!(days("cron(0 */4 ? * * *)"), Some(1));
        assert_eq!(days("cron(0 0 1 */3 ? *)"), Some(90));
        assert_eq!(days("cron(0 0 */2 * ? *)"), Some(2));
        assert_eq!(days("cron(0 0 ? * MON#1 *)"), Some(30));
        assert_eq!(days("cron(0 0 L * ? *)"), Some(30));
        assert_eq!(days("cron(0 0 ? * MON,THU *)"), Some(30));
    }

    #[test]
    fn refuses_what_is_not_a_schedule() {
        assert_eq!(days(""), None);
        assert_eq!(days("cron(0 0 1 * ?)"), None);
        assert_eq!(days("at(2024-01-01T00:00:00)"), None);
        assert_eq!(days("cron(0 0 1 */0 ? *)"), None);
    }
}
