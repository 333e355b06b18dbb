//! The diff view and the confirmation that shows a diff: recover's hardware config,
//! generated on this machine, against the committed one.

use super::*;
use crate::report::FileDiff;

const FILE: &str = "/etc/nixos/hardware-configuration.nix";

/// A diff long enough to scroll: the new machine's kernel modules and root UUID.
fn hardware_diff() -> Vec<String> {
    let mut lines: Vec<String> = [
        "--- committed",
        "+++ generated",
        "@@ -5,12 +5,12 @@",
        "   imports = [ (modulesPath + \"/profiles/qemu-guest.nix\") ];",
        "",
        "   boot.initrd.availableKernelModules = [ \"ahci\" \"xhci_pci\" \"virtio_pci\" \"sd_mod\" ];",
        "   boot.initrd.kernelModules = [ ];",
        "-  boot.kernelModules = [ ];",
        "+  boot.kernelModules = [ \"kvm-amd\" ];",
        "   boot.extraModulePackages = [ ];",
        "",
        "   fileSystems.\"/\" =",
        "-    { device = \"/dev/disk/by-uuid/0b1c2d3e-aaaa-4bbb-8ccc-111122223333\";",
        "+    { device = \"/dev/disk/by-uuid/7a2d9e41-dddd-4eee-8fff-444455556666\";",
        "       fsType = \"ext4\";",
        "     };",
        "@@ -30,6 +30,4 @@",
        "   swapDevices = [ ];",
        "-  networking.interfaces.ens3.useDHCP = lib.mkDefault true;",
        "-  networking.interfaces.ens10.useDHCP = lib.mkDefault true;",
        "   networking.useDHCP = lib.mkDefault true;",
        "   nixpkgs.hostPlatform = lib.mkDefault \"x86_64-linux\";",
    ]
    .map(String::from)
    .to_vec();
    lines.extend((1..=12).map(|i| format!("+  # generated line {i}")));
    lines
}

/// Recover up to hardware-config, which made its diff; `asks` puts its question too.
fn at_hardware_config(asks: bool) -> State {
    let mut state = recover_running(
        "hardware-config",
        vec![
            Action::Command {
                argv: vec![
                    "nixos-generate-config".into(),
                    "--show-hardware-config".into(),
                ],
            },
            Action::Write { path: FILE.into() },
        ],
    );
    for line in hardware_diff() {
        output(&mut state, 5_600, "hardware-config", &line);
    }
    state.update(Msg::Worker(
        at(5_600),
        FromWorker::Diff {
            step: "hardware-config",
            diff: FileDiff {
                file: FILE.into(),
                lines: hardware_diff(),
            },
        },
    ));
    if asks {
        let question = format!("write {FILE} and git add it (diff above)?");
        ask(&mut state, "hardware-config", Question::key(question));
    }
    state
}

fn diff_scroll(state: &State) -> Option<usize> {
    let Screen::Flow(view) = &state.screen else {
        return None;
    };
    view.diff.map(|d| d.scroll)
}

#[test]
fn the_flow_screen_offers_the_diff_of_the_selected_step() {
    let state = at_hardware_config(false);
    snapshot("diff_offered", &state);
}

#[test]
fn d_opens_the_diff_view_and_esc_or_q_closes_it() {
    let mut state = at_hardware_config(false);
    keys(&mut state, &[Key::Char('d')]);
    assert_eq!(diff_scroll(&state), Some(0));
    snapshot("diff_view", &state);
    keys(&mut state, &[Key::PageDown, Key::Char('j')]);
    assert_eq!(diff_scroll(&state), Some(11));
    snapshot("diff_view_scrolled", &state);
    assert!(keys(&mut state, &[Key::Char('q')]).is_empty());
    assert_eq!(state.quit, Quit::No, "q closes the diff, it does not quit");
    assert_eq!(diff_scroll(&state), None);
    keys(&mut state, &[Key::Char('d'), Key::Esc]);
    assert_eq!(diff_scroll(&state), None);
}

#[test]
fn a_step_without_a_diff_has_no_diff_to_open() {
    let mut state = at_hardware_config(false);
    keys(&mut state, &[Key::Up, Key::Char('d')]);
    assert_eq!(diff_scroll(&state), None);
}

#[test]
fn the_confirmation_shows_the_diff_and_scrolls_it_without_answering() {
    let mut state = at_hardware_config(true);
    snapshot("confirm_diff", &state);
    assert!(keys(&mut state, &[Key::PageDown, Key::Down]).is_empty());
    assert_eq!(
        state
            .overlay
            .as_ref()
            .and_then(Overlay::confirmation)
            .map(|c| c.diff_scroll),
        Some(11)
    );
    assert_eq!(
        keys(&mut state, &[Key::Char('y')]),
        [Effect::Answer(flow::Msg::Confirmed)]
    );
}

#[test]
fn under_no_color_the_diff_keeps_its_signs_and_loses_its_colours() {
    let mut state = at_hardware_config(false);
    keys(&mut state, &[Key::Char('d')]);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|frame| screens::render(frame, &state, Theme { color: false }))
        .unwrap();
    let buffer = terminal.backend().buffer();
    assert!(
        buffer
            .content()
            .iter()
            .all(|cell| cell.fg == ratatui::style::Color::Reset)
    );
    let text = terminal.backend().to_string();
    assert!(text.contains("+  boot.kernelModules = [ \"kvm-amd\" ];"));
    assert!(text.contains("-  boot.kernelModules = [ ];"));
}
