//! Reading a driver's options out of its [`TierConfig`]: the value kinds every driver
//! shares (strings, booleans, durations, sizes, counts) and the unknown-option error, each
//! with one wording, so a driver states only its table of options.

use std::time::Duration;

use super::units::{parse_duration, parse_size};
use super::TierConfig;
use crate::error::CacheError;

impl TierConfig {
    /// The string value of `option`; otherwise an error naming the option and saying
    /// what was `expected` (e.g. `"a table name such as \"cachet\""`).
    ///
    /// ```
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    /// let options: toml::Table = toml::from_str("table = \"cachet\"\nregion = 7").unwrap();
    /// let cfg = TierConfig::new("dynamodb", options.clone(), "stores.d.l2", ConfigOrigin::String);
    /// assert_eq!(cfg.string("table", &options["table"], "a table name")?, "cachet");
    /// let err = cfg.string("region", &options["region"], "a region name").unwrap_err();
    /// assert!(err.to_string().contains("stores.d.l2.region"), "{err}");
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn string(
        &self,
        option: &str,
        value: &toml::Value,
        expected: &str,
    ) -> Result<String, CacheError> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.error(option, expected))
    }

    /// The boolean value of `option` (`true` or `false`).
    ///
    /// ```
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    /// let options: toml::Table = toml::from_str("auto_create = false").unwrap();
    /// let cfg = TierConfig::new("database", options.clone(), "stores.d.l2", ConfigOrigin::String);
    /// assert!(!cfg.boolean("auto_create", &options["auto_create"])?);
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn boolean(&self, option: &str, value: &toml::Value) -> Result<bool, CacheError> {
        value
            .as_bool()
            .ok_or_else(|| self.error(option, "true or false"))
    }

    /// A duration greater than zero written as a string (`"250ms"`, `"1s"`,
    /// [`parse_duration`]'s forms).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    /// let options: toml::Table = toml::from_str("a = \"250ms\"\nb = \"0s\"\nc = 5").unwrap();
    /// let cfg = TierConfig::new("redis", options.clone(), "stores.r.l2", ConfigOrigin::String);
    /// assert_eq!(cfg.duration("a", &options["a"])?, Duration::from_millis(250));
    /// assert!(cfg.duration("b", &options["b"]).unwrap_err().to_string().contains("greater than zero"));
    /// assert!(cfg.duration("c", &options["c"]).is_err());
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn duration(&self, option: &str, value: &toml::Value) -> Result<Duration, CacheError> {
        let parsed = value
            .as_str()
            .ok_or_else(|| format!("found {value}"))
            .and_then(parse_duration)
            .map_err(|why| {
                self.error(
                    option,
                    format!("a duration such as \"1s\" or \"250ms\" ({why})"),
                )
            })?;
        if parsed.is_zero() {
            return Err(self.error(option, "a duration greater than zero, such as \"1s\""));
        }
        Ok(parsed)
    }

    /// A size in bytes greater than zero: a whole number of bytes, or a string with a
    /// unit (`"16mb"`, [`parse_size`]'s forms).
    ///
    /// ```
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    /// let options: toml::Table = toml::from_str("a = \"1mb\"\nb = 4096\nc = 0").unwrap();
    /// let cfg = TierConfig::new("redis", options.clone(), "stores.r.l2", ConfigOrigin::String);
    /// assert_eq!(cfg.size("a", &options["a"])?, 1024 * 1024);
    /// assert_eq!(cfg.size("b", &options["b"])?, 4096);
    /// assert!(cfg.size("c", &options["c"]).is_err());
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn size(&self, option: &str, value: &toml::Value) -> Result<usize, CacheError> {
        let size = match value {
            toml::Value::Integer(n) => u64::try_from(*n).map_err(|_| format!("{n} is negative")),
            toml::Value::String(text) => parse_size(text),
            other => Err(format!("found {other}")),
        };
        let expected = "a size in bytes greater than zero, such as \"16mb\" or 1048576";
        match size {
            Ok(n) => usize::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| self.error(option, expected)),
            Err(why) => Err(self.error(option, format!("{expected} ({why})"))),
        }
    }

    /// A whole number greater than zero that fits a `u32` (a pool size, a count).
    ///
    /// ```
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    /// let options: toml::Table = toml::from_str("a = 10\nb = -1").unwrap();
    /// let cfg = TierConfig::new("database", options.clone(), "stores.d.l2", ConfigOrigin::String);
    /// assert_eq!(cfg.count("a", &options["a"], "connections")?, 10);
    /// assert!(cfg.count("b", &options["b"], "connections").is_err());
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn count(&self, option: &str, value: &toml::Value, of: &str) -> Result<u32, CacheError> {
        value
            .as_integer()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| self.error(option, format!("a number of {of} greater than zero")))
    }

    /// The error for an option the driver does not have, listing the ones it has.
    ///
    /// ```
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    /// let cfg = TierConfig::new("redis", toml::Table::new(), "stores.r.l2", ConfigOrigin::String);
    /// let err = cfg.unknown_option("tabel", &["url", "operation_timeout"]);
    /// assert!(err.to_string().ends_with(
    ///     "`stores.r.l2.tabel`: no such option for the redis driver (known options: url, operation_timeout)",
    /// ));
    /// ```
    pub fn unknown_option(&self, option: &str, known: &[&str]) -> CacheError {
        self.error(
            option,
            format!(
                "no such option for the {} driver (known options: {})",
                self.driver,
                known.join(", ")
            ),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::ConfigOrigin;

    fn cfg(text: &str) -> (TierConfig, toml::Table) {
        let options: toml::Table = toml::from_str(text).unwrap();
        let cfg = TierConfig::new("test", options.clone(), "stores.s.l2", ConfigOrigin::String);
        (cfg, options)
    }

    #[test]
    fn durations_must_be_positive_strings() {
        let (cfg, o) =
            cfg("ok = \"1m\"\nzero = \"0ms\"\nnum = 5\nbad = \"5 minuts\"\nneg = \"-1s\"");
        assert_eq!(
            cfg.duration("ok", &o["ok"]).unwrap(),
            Duration::from_secs(60)
        );
        for name in ["zero", "num", "bad", "neg"] {
            let err = cfg.duration(name, &o[name]).unwrap_err().to_string();
            assert!(err.contains(&format!("stores.s.l2.{name}")), "{err}");
            assert!(err.contains("duration"), "{err}");
        }
    }

    #[test]
    fn sizes_are_integers_or_units_and_positive() {
        let (cfg, o) = cfg("a = \"2kb\"\nb = 7\nzero = 0\nneg = -3\nfrac = \"1.5gb\"\narr = [1]");
        assert_eq!(cfg.size("a", &o["a"]).unwrap(), 2048);
        assert_eq!(cfg.size("b", &o["b"]).unwrap(), 7);
        for name in ["zero", "neg", "frac", "arr"] {
            let err = cfg.size(name, &o[name]).unwrap_err().to_string();
            assert!(err.contains(&format!("stores.s.l2.{name}")), "{err}");
            assert!(err.contains("greater than zero"), "{err}");
        }
    }

    #[test]
    fn strings_booleans_counts_and_unknown_options() {
        let (cfg, o) = cfg("s = \"x\"\nb = true\nn = 3\nbig = 5000000000\nzero = 0");
        assert_eq!(cfg.string("s", &o["s"], "a name").unwrap(), "x");
        assert!(cfg.string("b", &o["b"], "a name").is_err());
        assert!(cfg.boolean("b", &o["b"]).unwrap());
        assert!(cfg.boolean("s", &o["s"]).is_err());
        assert_eq!(cfg.count("n", &o["n"], "things").unwrap(), 3);
        assert!(cfg.count("big", &o["big"], "things").is_err());
        assert!(cfg.count("zero", &o["zero"], "things").is_err());
        let err = cfg.unknown_option("ttl", &["a", "b"]).to_string();
        assert!(err.contains("stores.s.l2.ttl"), "{err}");
        assert!(err.contains("test driver (known options: a, b)"), "{err}");
    }
}
