//! The names of the flows and of their steps: each flow's enum of steps with the ids the
//! events and the journal use, [`StepId`] for a step of any flow, and [`FlowKind`]. Names
//! only, so that each flow's definitions (`flow/<flow>.rs`) and the lookups across all of
//! them (`flow/catalog.rs`) can name any step without this module needing either.

use std::fmt;

/// Declares the enum of a flow's steps: each variant with the id events and the journal
/// name it by, `ALL` in the order the flow runs them, and the way from a [`StepId`] to it.
/// The flow's module gives each variant its definition (`step_table!`).
macro_rules! flow_steps {
    ($(#[$meta:meta])* $name:ident for $flow:ident { $($variant:ident = $id:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $id, "`")] $variant,)+
        }

        impl $name {
            /// Every step, in the order the flow runs them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The id the events and the journal name the step by.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $id,)+
                }
            }
        }

        impl TryFrom<StepId> for $name {
            type Error = StepId;

            /// The step, when `id` is one of this flow's.
            fn try_from(id: StepId) -> Result<$name, StepId> {
                match id {
                    StepId::$flow(step) => Ok(step),
                    other => Err(other),
                }
            }
        }
    };
}

flow_steps! {
    /// The steps of `lifeboat inspect`, in the order they run: each needs the one before;
    /// `unmount` needs nothing and is a cleanup step, so it runs whatever happened before it.
    InspectStep for Inspect {
        FindVolume = "find-volume",
        IdentifyVolume = "identify-volume",
        MountReadonly = "mount-readonly",
        CheckLayout = "check-layout",
        Measure = "measure",
        Unmount = "unmount",
    }
}

flow_steps! {
    /// The steps of `lifeboat predestroy`, in the order they run.
    PredestroyStep for Predestroy {
        ConfigRepoCommitted = "config-repo-committed",
        ConfigRepoPushed = "config-repo-pushed",
        Rehearsal = "rehearsal",
        HomeOnVolume = "home-on-volume",
        NixOnVolume = "nix-on-volume",
        DockerOnVolume = "docker-on-volume",
        RootDiskAudit = "root-disk-audit",
        ConfigMirror = "config-mirror",
        PackageLists = "package-lists",
        HostIdentity = "host-identity",
        PersistenceMarker = "persistence-marker",
        RecoveryCard = "recovery-card",
        Backup = "backup",
    }
}

flow_steps! {
    /// The steps of `lifeboat recover`, in the order they run.
    RecoverStep for Recover {
        Preflight = "preflight",
        FindVolume = "find-volume",
        InspectVolume = "inspect-volume",
        RestoreHostIdentity = "restore-host-identity",
        CloneConfig = "clone-config",
        HardwareConfig = "hardware-config",
        BootSafety = "boot-safety",
        MountVolume = "mount-volume",
        Build = "build",
        ClosureOnVolume = "closure-on-volume",
        Boot = "boot",
        Reboot = "reboot",
    }
}

flow_steps! {
    /// The steps of `lifeboat verify`, in the order they run: every later step reads the
    /// volume through its mount, so each needs `home-mounted`.
    VerifyStep for Verify {
        HomeMounted = "home-mounted",
        NixBound = "nix-bound",
        OwnerUid = "owner-uid",
        HostIdentity = "host-identity",
        PersistenceMarker = "persistence-marker",
        ClosureOnVolume = "closure-on-volume",
        Generations = "generations",
    }
}

/// A step of any flow: which flow, and which of its steps. Its definition and refresh rule
/// are looked up in `flow/catalog.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepId {
    Inspect(InspectStep),
    Predestroy(PredestroyStep),
    Recover(RecoverStep),
    Verify(VerifyStep),
}

impl StepId {
    /// The id the events and the journal name the step by (ARCHITECTURE.md, "Steps and how to add one").
    pub const fn as_str(self) -> &'static str {
        match self {
            StepId::Inspect(step) => step.as_str(),
            StepId::Predestroy(step) => step.as_str(),
            StepId::Recover(step) => step.as_str(),
            StepId::Verify(step) => step.as_str(),
        }
    }

    /// The flow the step belongs to.
    pub fn flow(self) -> FlowKind {
        match self {
            StepId::Inspect(_) => FlowKind::Inspect,
            StepId::Predestroy(_) => FlowKind::Predestroy,
            StepId::Recover(_) => FlowKind::Recover,
            StepId::Verify(_) => FlowKind::Verify,
        }
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The flows lifeboat knows, each with its fixed list of steps (`flow/catalog.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    Inspect,
    Predestroy,
    Recover,
    Verify,
}

impl FlowKind {
    /// The flow's id as the command line and the JSON events name it.
    pub fn id(self) -> &'static str {
        match self {
            FlowKind::Inspect => "inspect",
            FlowKind::Predestroy => "predestroy",
            FlowKind::Recover => "recover",
            FlowKind::Verify => "verify",
        }
    }
}
