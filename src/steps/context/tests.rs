//! The change gate's tests, in a file of their own: they run a step's context from
//! `steps/testing.rs`, which is built on this module, so inline they would make the two use
//! each other.

use super::*;
use crate::flow::{RecoverStep, StepId};
use crate::steps::testing::with_context;

#[test]
fn a_change_is_asked_and_dry_run_in_one_wording() {
    let change = Change::new("rewrite the device in hosts.nix and commit", Assent::Key)
        .because("the repository mounts /home from /dev/sdb, which is not on this machine")
        .then("(Or attach the old volume.)");
    assert_eq!(
        change.question(),
        Question::key(
            "the repository mounts /home from /dev/sdb, which is not on this machine. \
             Rewrite the device in hosts.nix and commit? (Or attach the old volume.)"
        )
    );
    assert_eq!(
        change.dry_run(),
        "dry run: would rewrite the device in hosts.nix and commit (the repository mounts \
         /home from /dev/sdb, which is not on this machine)"
    );
    let plain = Change::new("clone x into y", Assent::TypedHostname).followed_by("build it");
    assert_eq!(
        plain.question(),
        Question::typed_hostname("clone x into y, and then build it?")
    );
    with_context(StepId::Recover(RecoverStep::Boot), |ctx| {
        assert_eq!(
            ask_before(ctx, false, &plain),
            Some(Outcome::NeedsConfirmation(plain.question()))
        );
        assert_eq!(ask_before(ctx, true, &plain), None);
        assert_eq!(skip_in_dry_run(ctx, "build"), None);
        let dry = StepContext {
            dry_run: true,
            ..*ctx
        };
        assert_eq!(
            ask_before(&dry, true, &plain),
            Some(Outcome::Skipped(
                "dry run: would clone x into y, and then build it".into()
            ))
        );
        assert_eq!(
            skip_in_dry_run(&dry, "build"),
            Some(Outcome::Skipped("dry run: would build".into()))
        );
    });
}
