//! Thin entry point: parse the command line, run the command, map the outcome to an exit code.

use clap::Parser;

use credaudit::cli::{Cli, Command};
use credaudit::commands;

fn main() {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    let result = match &cli.command {
        Command::Scan(args) => commands::scan(args),
        Command::Rules(args) => commands::rules_list(args, &mut stdout),
        Command::Explain { rule } => commands::explain(rule, &mut stdout),
        Command::Generate(args) => commands::generate(args),
        Command::Controls(args) => commands::controls_list(args, &mut stdout),
        Command::Report(args) => commands::report(args),
        Command::Merge(args) => commands::merge(args),
        Command::Collect(args) => commands::collect(args),
        Command::IamPolicy(args) => commands::iam_policy(args, &mut stdout),
        Command::Verify(args) => commands::verify(args, &mut stdout),
        Command::Diff(args) => commands::diff_runs(args, &mut stdout),
        Command::Simulate(args) => commands::simulate(args, &mut stdout),
        Command::Query(args) => commands::query(args, &mut stdout),
        Command::Completions { shell } => commands::completions(*shell, &mut stdout),
        Command::Man => commands::man(&mut stdout),
    };
    match result {
        Ok(outcome) => std::process::exit(outcome.exit_code()),
        Err(err) => {
            // The message may quote an input file or AWS; keep it from acting on the terminal.
            eprintln!("error: {}", credaudit::term::escape(&err.to_string()));
            std::process::exit(2);
        }
    }
}
