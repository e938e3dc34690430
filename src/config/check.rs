//! `herald check-config FILE`: every problem of a configuration file, one line per key; and the
//! options table the README shows, made from the same declarations as `--help`.

use super::options::{defaults, FileOptions, Options};
use clap::{Args, Command};
use serde::Deserialize;

/// Every problem of the TOML `text`: unknown keys (with the closest known one), values of the
/// wrong type, and what resolving the whole file refuses. Empty when the file is good.
pub fn problems(text: &str) -> Vec<String> {
    let table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(e) => return vec![format!("not valid TOML: {}", e.message())],
    };
    let known: Vec<&str> = defaults()
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| *key != "config")
        .chain([
            "file_tail",
            "redis_url",
            "redis_channel",
            "demo",
            "demo_public",
            "publish_hook",
            "rpc",
            "webhook",
            "channels",
            "pusher_app",
        ])
        .collect();
    let mut problems = Vec::new();
    for (key, value) in &table {
        if !known.contains(&key.as_str()) {
            let hint = closest(key, &known)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            problems.push(format!("`{key}`: unknown key{hint}"));
            continue;
        }
        let mut alone = toml::Table::new();
        alone.insert(key.clone(), value.clone());
        if let Err(e) = FileOptions::deserialize(toml::Value::Table(alone)) {
            problems.push(format!("`{key}`: {}", e.message().trim()));
        }
    }
    if problems.is_empty() {
        let resolved = toml::from_str::<FileOptions>(text)
            .map_err(anyhow::Error::from)
            .and_then(|file| Options::default().resolve_with(file));
        if let Err(e) = resolved {
            problems.push(format!("{e:#}"));
        }
    }
    problems
}

/// The known key nearest to `key`, if it is near enough to be a typo.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j] + 1).min(row[j + 1] + 1).min(previous + cost);
            previous = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The README's table of options: flag, environment variable, TOML key, default, meaning.
pub fn markdown_table() -> String {
    let command = Options::augment_args(Command::new("herald"));
    let defaults = defaults();
    let mut out = String::from(
        "| flag | environment | TOML key | default | meaning |\n|---|---|---|---|---|\n",
    );
    for (key, default) in &defaults {
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_id().as_str() == *key)
        else {
            continue;
        };
        let flag = match (arg.get_long(), arg.get_value_names()) {
            (Some(long), Some(names)) => format!("`--{long} {}`", names[0]),
            (Some(long), None) => format!("`--{long}`"),
            _ => "–".to_string(),
        };
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_else(|| "see meaning".to_string());
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string().replace('\n', " "))
            .unwrap_or_default();
        let toml_key = if *key == "config" {
            "–".to_string()
        } else {
            format!("`{key}`")
        };
        out.push_str(&format!(
            "| {flag} | {env} | {toml_key} | {default} | {help} |\n"
        ));
    }
    out
}

/// Adds each option's default to its `--help` text.
pub fn with_defaults_in_help(command: Command) -> Command {
    let defaults = defaults();
    let mut command = command;
    let names: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, with_defaults_in_help);
    }
    let ids: Vec<String> = command
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids {
        if let Some((_, default)) = defaults.iter().find(|(key, _)| *key == id) {
            let default = default.replace('`', "");
            command = command.mut_arg(id, |arg| {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                arg.help(format!("{help} [default: {default}]"))
            });
        }
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_has_no_problems() {
        let text = "listen = \"127.0.0.1:9000\"\nmax_payload_bytes = 4096\n\
                    [[file_tail]]\npath = \"/var/log/a.log\"\nchannel = \"logs\"\nevent = \"E\"\n";
        assert_eq!(problems(text), Vec::<String>::new());
    }

    #[test]
    fn each_bad_key_is_named_with_what_is_wrong() {
        let text = "max_payload_byte = 10\nheartbeat_ms = \"soon\"\nkv_replicas = 3\n\
                    allowed_origins = 5\n";
        let found = problems(text);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found.iter().any(|p| p
                .starts_with("`max_payload_byte`: unknown key; did you mean `max_payload_bytes`?")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("`heartbeat_ms`:") && p.contains("string")),
            "{found:#?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("`allowed_origins`:")),
            "{found:#?}"
        );
    }

    #[test]
    fn channel_history_tables_are_checked() {
        let good = "history_size = 50\n[[channels]]\npattern = \"logs-*\"\nhistory_size = 0\n";
        assert_eq!(problems(good), Vec::<String>::new());
        let typo = problems("[[channels]]\npattern = \"a\"\nhistory_sise = 1\n");
        assert!(
            typo.len() == 1 && typo[0].contains("history_sise"),
            "{typo:#?}"
        );
        let huge = problems("[[channels]]\npattern = \"a\"\nhistory_size = 100000\n");
        assert!(
            huge.len() == 1 && huge[0].contains("history_size 100000"),
            "{huge:#?}"
        );
    }

    #[test]
    fn values_are_checked_together_once_each_key_is_good() {
        let found = problems("kv_replicas = 9\n");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("between 1 and 5"), "{}", found[0]);
    }

    #[test]
    fn the_readme_table_is_the_declared_one() {
        let readme = include_str!("../../README.md");
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's options table differs from the declarations; replace it with the \
             output of `herald options`:\n{table}"
        );
    }
}
