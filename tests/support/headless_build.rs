//! Recover's build step run in this process as `lifeboat recover --json` runs it: events
//! printed as JSON on stdout and written to the run's transcript under `state`, with a
//! stand-in `nixos-rebuild`. For the test and the benchmark that follow a build's log.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use nixos_lifeboat::config::Config;
use nixos_lifeboat::flow::{Outcome, RecoverStep, StepId};
use nixos_lifeboat::frontend::headless::{JsonSink, Tee};
use nixos_lifeboat::session::Session;
use nixos_lifeboat::steps::context::{EventSink, StepContext};
use nixos_lifeboat::steps::recover::RecoverRunner;
use nixos_lifeboat::steps::runner::FlowRunner;

/// Build host `host` with `nixos_rebuild` as `[commands].nixos_rebuild`; the step must pass.
pub fn build(state: &Path, host: &str, nixos_rebuild: Vec<String>) {
    let mut cfg = Config::default();
    cfg.state.dir = state.to_path_buf();
    cfg.config_repo.flake_host = Some(host.into());
    cfg.commands.nixos_rebuild = nixos_rebuild;
    let session = Session::open(state, "recover", false).expect("session");
    let transcript = session.transcript.as_ref().expect("transcript");
    let tee = Tee::new(vec![&JsonSink as &dyn EventSink, transcript]);
    let cancel = AtomicBool::new(false);
    let ctx = StepContext {
        flow: "recover",
        step: StepId::Recover(RecoverStep::Build),
        sink: &tee,
        cancel: &cancel,
        dry_run: false,
        journal: &session.journal,
    };
    let mut runner = RecoverRunner::new(cfg);
    let outcome = FlowRunner::run(&mut runner, RecoverStep::Build, true, &ctx);
    assert!(matches!(outcome, Outcome::Passed(_)), "{outcome:?}");
}
