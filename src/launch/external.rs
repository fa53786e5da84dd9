//! External replicas (`external = true`): started by hand, so the coordinator says what each
//! needs to join, its environment, on stderr and (`--endpoints FILE`) as JSON.

use super::options::RunOptions;
use super::os::{private_file, shell_quote};
use super::outcome::RunError;
use super::plan::{Plan, Starter};
use crate::topology::Topology;

/// Say what each external replica needs to join: its `PROCNET_*` environment.
pub fn announce(t: &Topology, plan: &Plan, opts: &RunOptions) -> Result<(), RunError> {
    let placement = opts.placement;
    let external: Vec<_> = plan.ids().filter(|&r| matches!(plan.get(r).starter, Starter::External { .. })).collect();
    // The coordinator says it, for every host.
    if external.is_empty() || !placement.coordinates() {
        return Ok(());
    }
    let mut json = Vec::new();
    for r in external {
        let p = plan.get(r);
        // On another host, it reaches the coordinator over tcp.
        let control = match placement.tcp_control(t, false) {
            Some(tcp) if !placement.here(t, p.node, p.index) => tcp,
            _ => plan.control.clone(),
        };
        let env = plan.identity(t, r, &control, 0, 0).env();
        let line: Vec<String> = env.iter().map(|(k, v)| format!("{k}={}", shell_quote(v))).collect();
        let text = format!("waiting for external node `{}`; start it with this environment:", p.id);
        let notice = super::notice::Notice::info("external-waiting", text).about(p.id.clone());
        super::notice::say(&notice.with_detail(vec![line.join(" ")]));
        let env: serde_json::Map<String, serde_json::Value> =
            env.into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(v))).collect();
        json.push(serde_json::json!({
            "id": p.id,
            "node": t.nodes[p.node].name,
            "replica": p.index,
            "env": env,
        }));
    }
    if let Some(path) = &opts.endpoints_file {
        let doc = serde_json::json!({ "topology": t.name, "replicas": json });
        // Written whole, then renamed: a reader polling for the file never sees half of it.
        // Readable by this user only: it holds the run's secret.
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
        private_file(&tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(RunError::system(format!("write `{}`", path.display())))?;
    }
    Ok(())
}
