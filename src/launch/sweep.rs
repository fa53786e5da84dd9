//! `procnet run FILE --sweep PATH=V1,V2,...`: an experiment over settings. Each `--sweep`
//! names a topology value (as `--set` does) and the values to try; the run is repeated for
//! every combination of them (the first sweep varying slowest), `--repeat K` times each,
//! and the report records every run with the values it ran with (its `params`), so that
//! `procnet plot` can draw what changed with what.

use std::str::FromStr;

use crate::topology::Override;

/// One `--sweep PATH=V1,V2,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// The value swept, as `--set` names it (`nodes.filter.replicas`).
    pub path: String,
    /// Its values, each as `--set` would take it (TOML, else a string).
    pub values: Vec<String>,
}

impl FromStr for Sweep {
    type Err = String;

    fn from_str(s: &str) -> Result<Sweep, String> {
        let Some((path, values)) = s.split_once('=') else {
            return Err(format!("`{s}` is not PATH=V1,V2,..., e.g. `nodes.filter.replicas=1,2,4`"));
        };
        let path = path.trim();
        if path.is_empty() {
            return Err(format!("`{s}` names no value to sweep before `=`"));
        }
        let values = split_values(values);
        if values.iter().any(String::is_empty) {
            return Err(format!("`{s}` has an empty value; give values separated by commas, e.g. `{path}=1,2,4`"));
        }
        let mut seen = Vec::new();
        for v in &values {
            if seen.contains(&v) {
                return Err(format!("`{s}` gives `{v}` twice"));
            }
            seen.push(v);
        }
        // Each point must be a valid `--set`: check the path's syntax once, here.
        Override::from_str(&format!("{path}={}", values[0]))?;
        Ok(Sweep { path: path.to_string(), values })
    }
}

/// Split `text` at the commas that are not inside brackets, braces or quotes, so that a
/// value may be an array (`["a","b"]`) or a string with a comma (`"x,y"`).
fn split_values(text: &str) -> Vec<String> {
    let (mut values, mut current, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None);
    for c in text.chars() {
        match (c, quote) {
            (q @ ('"' | '\''), None) => quote = Some(q),
            (q, Some(open)) if q == open => quote = None,
            ('[' | '{', None) => depth += 1,
            (']' | '}', None) => depth -= 1,
            (',', None) if depth == 0 => {
                values.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    values.push(current.trim().to_string());
    values
}

/// One combination of swept values: (path, value) per sweep, in the order of the flags.
pub type Point = Vec<(String, String)>;

/// Every combination of `sweeps`' values, the first sweep varying slowest.
pub fn points(sweeps: &[Sweep]) -> Vec<Point> {
    let mut points: Vec<Point> = vec![Vec::new()];
    for s in sweeps {
        points = points
            .into_iter()
            .flat_map(|p| {
                s.values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.push((s.path.clone(), v.clone()));
                    p
                })
            })
            .collect();
    }
    points
}

/// A point as the `--set` flags that make it.
pub fn overrides(point: &Point) -> Result<Vec<Override>, String> {
    point.iter().map(|(path, value)| Override::from_str(&format!("{path}={value}"))).collect()
}

/// A point in words: `nodes.filter.replicas=2, defaults.start=fork`.
pub fn describe(point: &Point) -> String {
    point.iter().map(|(p, v)| format!("{p}={v}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_at_top_level_commas_only() {
        let s: Sweep = "nodes.f.replicas=1, 2,4".parse().expect("valid");
        assert_eq!(s.values, ["1", "2", "4"]);
        let s: Sweep = r#"nodes.f.host=["a","b"],["c"],"x,y""#.parse().expect("valid");
        assert_eq!(s.values, [r#"["a","b"]"#, r#"["c"]"#, r#""x,y""#]);
    }

    #[test]
    fn a_malformed_sweep_says_why() {
        assert!("nodes.f.replicas".parse::<Sweep>().unwrap_err().contains("is not PATH=V1,V2"));
        assert!("nodes.f.replicas=1,,2".parse::<Sweep>().unwrap_err().contains("an empty value"));
        assert!("nodes.f.replicas=1,1".parse::<Sweep>().unwrap_err().contains("gives `1` twice"));
        assert!("=1,2".parse::<Sweep>().is_err());
    }

    #[test]
    fn points_are_every_combination_first_sweep_slowest() {
        let a: Sweep = "a.x=1,2".parse().expect("valid");
        let b: Sweep = "b.y=p,q".parse().expect("valid");
        let got: Vec<String> = points(&[a, b]).iter().map(describe).collect();
        assert_eq!(got, ["a.x=1, b.y=p", "a.x=1, b.y=q", "a.x=2, b.y=p", "a.x=2, b.y=q"]);
        assert_eq!(points(&[]), vec![Vec::<(String, String)>::new()]);
    }
}
