//! How a component is started: program, arguments, environment. A profile can override each
//! part (see [`crate::profile`]), so a user can run their own culler branch or hub build.
//!
//! A [`CommandSpec`] is plain data: a component module builds one from the toolchain and the
//! scenario, [`crate::profile::ComponentOverride::apply`] edits it, and the backend runs it
//! (`program` with `args` as argv[1..], `env` added to the backend's base environment).
//!
//! ```
//! use hubchaos::backend::local::command::CommandSpec;
//!
//! // `python -m jupyterhub_idle_culler --url=... --timeout=600`: the first two args select
//! // *what* runs, so a profile's `command` replaces them together with the program.
//! let cmd = CommandSpec::new("/env/venv/bin/python")
//!     .with_command_args(["-m", "jupyterhub_idle_culler"])
//!     .arg("--url=http://127.0.0.1:8081/hub/api")
//!     .arg("--timeout=600")
//!     .env("JUPYTERHUB_API_TOKEN", "secret");
//! assert_eq!(cmd.options(), ["--url=http://127.0.0.1:8081/hub/api", "--timeout=600"]);
//! assert_eq!(cmd.get_option("--timeout"), Some("600"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One process to start.
///
/// `args` are argv[1..]. The first `prefix_len` of them are part of the *command* (e.g.
/// `["-m", "jupyterhub_idle_culler"]` after a python interpreter): a profile `command`
/// replaces `program` and that prefix, while `remove_args` / `args` work on the options after
/// it. Components started through an entry-point script (`jupyterhub`,
/// `configurable-http-proxy`) have `prefix_len == 0`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// `argv[0]`: an absolute path, or a name looked up on the backend's `PATH`.
    pub program: PathBuf,
    /// argv[1..], passed verbatim (no shell).
    pub args: Vec<String>,
    /// Added to (and overriding) the backend's base environment.
    pub env: BTreeMap<String, String>,
    /// How many leading `args` belong to the command rather than to its options.
    #[serde(default)]
    pub prefix_len: usize,
}

impl CommandSpec {
    /// A command with no arguments and no extra environment.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self { program: program.into(), ..Self::default() }
    }

    /// Set the arguments that are part of the command (replaces any previous prefix; options
    /// already added are kept after it).
    pub fn with_command_args<I, S>(mut self, prefix: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.set_command_args(prefix.into_iter().map(Into::into).collect());
        self
    }

    /// Append one option.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Append options.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set one environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The arguments that belong to the command (`args[..prefix_len]`).
    pub fn command_args(&self) -> &[String] {
        &self.args[..self.prefix_len.min(self.args.len())]
    }

    /// The options after the command prefix (`args[prefix_len..]`).
    pub fn options(&self) -> &[String] {
        &self.args[self.prefix_len.min(self.args.len())..]
    }

    /// Replace the command prefix, keeping the options.
    pub fn set_command_args(&mut self, prefix: Vec<String>) {
        let options = self.options().to_vec();
        self.prefix_len = prefix.len();
        self.args = prefix;
        self.args.extend(options);
    }

    /// Remove every option whose key equals `key`'s key, where an option's key is the part
    /// before the first `=` (`--timeout=600` and a bare `--timeout` both have key `--timeout`;
    /// `key` itself may carry a `=value`, which is ignored). The command prefix is never
    /// touched, and a value given as a separate argument (`--timeout 600`) is not recognised:
    /// components are built with `--key=value`. Returns how many were removed.
    pub fn remove_option(&mut self, key: &str) -> usize {
        let key = option_key(key);
        let split = self.prefix_len.min(self.args.len());
        let before = self.args.len();
        let mut options = self.args.split_off(split);
        options.retain(|a| option_key(a) != key);
        self.args.extend(options);
        before - self.args.len()
    }

    /// The value of the last `key=value` option (`None` if absent or given without `=`).
    pub fn get_option(&self, key: &str) -> Option<&str> {
        let key = option_key(key);
        self.options().iter().rev().find_map(|a| a.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// argv as one vector: program, then args.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.to_string_lossy().into_owned()).chain(self.args.iter().cloned()).collect()
    }
}

/// Whether an environment variable holds a credential, by its name (`TOKEN`, `SECRET`,
/// `PASSWORD`, `KEY`): its value is never written to logs or reports.
pub fn is_secret(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    ["TOKEN", "SECRET", "PASSWORD", "KEY"].iter().any(|s| upper.contains(s))
}

/// The part of an option before the first `=`.
fn option_key(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(k, _)| k)
}

/// Shell-style rendering for logs and reports: `KEY=value … program arg …`, each word quoted
/// when needed. Environment values whose key looks secret (`TOKEN`, `SECRET`, `PASSWORD`,
/// `KEY`) are shown as `***`.
impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        fn word(f: &mut fmt::Formatter<'_>, first: &mut bool, w: &str) -> fmt::Result {
            if !*first {
                f.write_str(" ")?;
            }
            *first = false;
            f.write_str(&shell_quote(w))
        }
        for (k, v) in &self.env {
            let secret = is_secret(k);
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let v = if secret { "***".to_string() } else { shell_quote(v) };
            write!(f, "{}={v}", shell_quote(k))?;
        }
        word(f, &mut first, &self.program.to_string_lossy())?;
        for a in &self.args {
            word(f, &mut first, a)?;
        }
        Ok(())
    }
}

/// Quote a word for a POSIX shell if it contains anything but safe characters.
pub fn shell_quote(w: &str) -> String {
    let safe = !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn culler() -> CommandSpec {
        CommandSpec::new("/env/venv/bin/python").with_command_args(["-m", "jupyterhub_idle_culler"]).args([
            "--timeout=600",
            "--cull-users",
            "--url=http://x",
        ])
    }

    #[test]
    fn prefix_and_options_are_separate() {
        let c = culler();
        assert_eq!(c.command_args(), ["-m", "jupyterhub_idle_culler"]);
        assert_eq!(c.options(), ["--timeout=600", "--cull-users", "--url=http://x"]);
        assert_eq!(c.argv()[0], "/env/venv/bin/python");
        assert_eq!(c.argv().len(), 6);
    }

    #[test]
    fn set_command_args_keeps_options() {
        let mut c = culler();
        c.set_command_args(vec![]);
        assert_eq!(c.prefix_len, 0);
        assert_eq!(c.args, ["--timeout=600", "--cull-users", "--url=http://x"]);
    }

    #[test]
    fn remove_option_by_key_never_touches_prefix() {
        let mut c = culler();
        assert_eq!(c.remove_option("--cull-users"), 1);
        assert_eq!(c.remove_option("--timeout=1"), 1);
        assert_eq!(c.remove_option("-m"), 0);
        assert_eq!(c.args, ["-m", "jupyterhub_idle_culler", "--url=http://x"]);
        assert_eq!(c.get_option("--url"), Some("http://x"));
        assert_eq!(c.get_option("--timeout"), None);
    }

    #[test]
    fn display_quotes_and_hides_secrets() {
        let c = CommandSpec::new("/bin/x").arg("a b").arg("it's").env("JUPYTERHUB_API_TOKEN", "abc").env("MODE", "1");
        assert_eq!(c.to_string(), r"JUPYTERHUB_API_TOKEN=*** MODE=1 /bin/x 'a b' 'it'\''s'");
    }
}
