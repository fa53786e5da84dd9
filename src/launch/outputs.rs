//! After a run, the output files of the replicas this launcher started: into place if the run
//! succeeded, aside as `<target>.partial` if not (see `crate::runtime::outfile`). Only the
//! launcher knows how the whole run ended, so only it may decide.

use std::path::Path;

use super::notice::Notice;
use crate::runtime::outfile::{self, Settled};
use crate::topology::{NodeId, Runner, Topology};

/// Settle every output file of the replicas for which `here` holds, of the run whose private
/// directory is `dir`: commit them (`ok`) or keep them aside. Returns what to tell the user,
/// and the files that could not be moved (an error each).
pub fn settle(t: &Topology, here: impl Fn(NodeId, u32) -> bool, dir: &Path, ok: bool) -> (Vec<Notice>, Vec<String>) {
    let run = outfile::run_name(Some(dir));
    let (mut notes, mut errors) = (Vec::new(), Vec::new());
    for (n, node) in t.nodes.iter().enumerate() {
        let Runner::Builtin(kind) = &node.runner else { continue };
        for replica in (0..node.replicas).filter(|&r| here(n, r)) {
            for (target, _) in kind.files().into_iter().filter(|(_, written)| *written) {
                match outfile::settle(target, &run, ok) {
                    Ok(Settled::Kept(kept)) => {
                        let text = format!(
                            "the run did not succeed, so `{}` is as it was; what `{}.{replica}` wrote is in `{}`",
                            target.display(),
                            node.name,
                            kept.display()
                        );
                        notes.push(Notice::warn("output-kept-aside", text).about(format!("{}.{replica}", node.name)));
                    }
                    Ok(_) => {}
                    Err(e) => errors.push(format!(
                        "failed to move the output of `{}.{replica}` into place (`{}`): {e}",
                        node.name,
                        target.display()
                    )),
                }
            }
        }
    }
    (notes, errors)
}

/// [`settle`] the output files of the replicas a launcher placed at `placement` started,
/// saying on stderr what was kept aside; an error naming the files that could not be moved.
pub fn settle_here(
    t: &Topology,
    placement: super::options::Placement,
    dir: &Path,
    ok: bool,
) -> Result<(), super::outcome::RunError> {
    let (notes, errors) = settle(t, |n, r| placement.here(t, n, r), dir, ok);
    for note in notes {
        super::notice::say(&note);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(super::outcome::RunError::Setup(errors.join("; ")))
    }
}
