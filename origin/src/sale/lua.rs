//! A Lua script beside the names of its KEYS and ARGV, in the order its header
//! lists them (`-- KEYS[1] stock ...`, `-- ARGV[2] user ...`; `KEYS[2..]` for a
//! variable tail). Each wrapper calls its script through [`Lua::keys`] with the
//! keys in that order, and a test checks every declaration against its header.
//! Scripts are loaded once and called with EVALSHA (redis-rs `Script`, which
//! reloads on NOSCRIPT, e.g. after a Redis restart or on a new master).

use std::sync::OnceLock;

use redis::{Script, ScriptInvocation};

pub struct Lua {
    pub source: &'static str,
    /// Names of KEYS[1], KEYS[2], …; `name..` for a variable tail.
    pub keys: &'static [&'static str],
    /// Names of ARGV[1], ARGV[2], …; `name..` for a variable tail.
    pub args: &'static [&'static str],
    script: OnceLock<Script>,
}

impl Lua {
    pub const fn new(
        source: &'static str,
        keys: &'static [&'static str],
        args: &'static [&'static str],
    ) -> Self {
        Self {
            source,
            keys,
            args,
            script: OnceLock::new(),
        }
    }

    pub fn script(&self) -> &Script {
        self.script.get_or_init(|| Script::new(self.source))
    }

    /// An invocation with its keys, in the order of [`Lua::keys`].
    pub fn keys<'a>(&'a self, keys: &[&str]) -> ScriptInvocation<'a> {
        debug_assert!(
            keys.len() == self.keys.len() || self.keys.last().is_some_and(|k| k.ends_with("..")),
            "{} keys for {:?}",
            keys.len(),
            self.keys
        );
        let mut invocation = self.script().prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        invocation
    }

    /// The names the header gives `KEYS` and `ARGV`.
    pub fn header(&self) -> (Vec<String>, Vec<String>) {
        let names = |kind: &str| {
            self.source
                .lines()
                .filter_map(|line| line.strip_prefix(&format!("-- {kind}[")))
                .filter_map(|rest| {
                    let (index, rest) = rest.split_once(']')?;
                    let name = rest.split_whitespace().next()?;
                    Some(if index.ends_with("..") {
                        format!("{name}..")
                    } else {
                        name.to_owned()
                    })
                })
                .collect::<Vec<_>>()
        };
        (names("KEYS"), names("ARGV"))
    }
}
