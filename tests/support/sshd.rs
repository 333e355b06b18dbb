//! A real OpenSSH server on 127.0.0.1 for tests of git over SSH: a throwaway host key, an
//! authorized_keys file the test fills, root logins by key only. Killed when dropped.
//!
//! ```ignore
//! let sshd = Sshd::start();
//! let key = generate_key(volume_dir, "id_ed25519");   // the client key, where the test wants it
//! sshd.authorize(&key);
//! let url = sshd.url(&bare_repo);                      // ssh://root@127.0.0.1:<port>/<path>
//! std::fs::write(known_hosts, sshd.known_hosts_line());
//! ```

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";
/// How long the server may take to start before the test gives up (not a measurement).
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Sshd {
    pub port: u16,
    /// The server's private host key; its public half is `host_key.pub`.
    pub host_key: PathBuf,
    /// Every host key the server has, `host_key` first.
    pub host_keys: Vec<PathBuf>,
    authorized_keys: PathBuf,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sshd {
    /// Start sshd on a free port of 127.0.0.1 with an ed25519 host key and wait until it
    /// answers.
    pub fn start() -> Sshd {
        Sshd::start_with_host_keys(&["ed25519"])
    }

    /// Start sshd with host keys of these `ssh-keygen -t` types; [`Sshd::host_key`] is the
    /// first, and every one is in [`Sshd::known_hosts_line`].
    pub fn start_with_host_keys(key_types: &[&str]) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-sshd-")
            .tempdir()
            .expect("create a temporary directory");
        let host_keys: Vec<PathBuf> = key_types
            .iter()
            .map(|t| generate_key_of_type(dir.path(), &format!("host_{t}"), t, ""))
            .collect();
        Sshd::serve(dir, host_keys)
    }

    /// Start sshd with these private host key files (a machine's own, as they are).
    pub fn start_with_host_key_files(host_keys: &[PathBuf]) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-sshd-")
            .tempdir()
            .expect("create a temporary directory");
        Sshd::serve(dir, host_keys.to_vec())
    }

    fn serve(dir: tempfile::TempDir, host_keys: Vec<PathBuf>) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (scripts/test.sh does)"
        );
        fs::create_dir_all("/run/sshd")
            .expect("create /run/sshd (sshd's privilege separation dir)");
        let authorized_keys = dir.path().join("authorized_keys");
        File::create(&authorized_keys).expect("create authorized_keys");
        let port = free_port();
        let config = dir.path().join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\n{}AuthorizedKeysFile {}\n\
                 StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPidFile none\n\
                 LogLevel VERBOSE\n",
                host_keys
                    .iter()
                    .map(|k| format!("HostKey {}\n", k.display()))
                    .collect::<String>(),
                authorized_keys.display()
            ),
        )
        .expect("write sshd_config");
        let log = dir.path().join("sshd.log");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("create sshd.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {SSHD}: {e}"));
        let sshd = Sshd {
            port,
            host_key: host_keys[0].clone(),
            host_keys,
            authorized_keys,
            log,
            child,
            _dir: dir,
        };
        sshd.wait_until_ready();
        sshd
    }

    /// Wait for the SSH banner, so a test's first connection does not race the start.
    fn wait_until_ready(&self) {
        let started = Instant::now();
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut banner = [0u8; 4];
                if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return;
                }
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "sshd did not start on port {}; its log:\n{}",
                self.port,
                self.log()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Let the holder of the private key `key` (its `.pub` beside it) log in as root.
    pub fn authorize(&self, key: &Path) {
        let public = fs::read_to_string(public_half(key)).expect("read the public key");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&self.authorized_keys)
            .expect("open authorized_keys");
        file.write_all(public.as_bytes())
            .expect("append to authorized_keys");
    }

    /// `ssh://root@127.0.0.1:<port><path>` for a repository at absolute `path`.
    pub fn url(&self, path: &Path) -> String {
        format!("ssh://root@127.0.0.1:{}{}", self.port, path.display())
    }

    /// The known_hosts line that trusts this server's first host key:
    /// `[127.0.0.1]:<port> ssh-ed25519 …`.
    pub fn known_hosts_line(&self) -> String {
        self.known_hosts_line_for(&self.host_key)
    }

    /// The known_hosts line that trusts host key `key` (one of [`Sshd::host_keys`]) for this server.
    pub fn known_hosts_line_for(&self, key: &Path) -> String {
        let public = fs::read_to_string(public_half(key)).expect("read the host key");
        let mut fields = public.split_whitespace();
        let (key_type, blob) = (fields.next().unwrap(), fields.next().unwrap());
        format!("[127.0.0.1]:{} {key_type} {blob}\n", self.port)
    }

    /// The host key's fingerprint as `ssh-keygen -lf` prints it (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.host_key)
    }

    /// What sshd logged so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Generate an ed25519 key pair without passphrase at `dir/name` (and `dir/name.pub`).
pub fn generate_key(dir: &Path, name: &str) -> PathBuf {
    generate_key_with_passphrase(dir, name, "")
}

/// Generate an ed25519 key pair at `dir/name` protected by `passphrase`.
pub fn generate_key_with_passphrase(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
    generate_key_of_type(dir, name, "ed25519", passphrase)
}

/// Generate a key pair of `ssh-keygen -t` type `key_type` at `dir/name`.
pub fn generate_key_of_type(dir: &Path, name: &str, key_type: &str, passphrase: &str) -> PathBuf {
    let key = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", key_type, "-N", passphrase, "-C", name, "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen (openssh-client)");
    assert!(status.success(), "ssh-keygen failed for {}", key.display());
    key
}

/// `SHA256:…` of the public half of `key`, from `ssh-keygen -lf`.
pub fn fingerprint(key: &Path) -> String {
    let output = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_half(key))
        .output()
        .expect("run ssh-keygen -lf");
    assert!(output.status.success(), "ssh-keygen -lf failed");
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .nth(1)
        .expect("ssh-keygen -lf prints a fingerprint")
        .to_string()
}

fn public_half(key: &Path) -> PathBuf {
    let mut public = key.as_os_str().to_owned();
    public.push(".pub");
    PathBuf::from(public)
}

/// A port nobody listens on right now (the kernel's pick; released before sshd binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A real ssh-agent on a socket in a temporary directory, killed when dropped. Point
/// `SSH_AUTH_SOCK` at [`Agent::socket`] to use it.
pub struct Agent {
    pub socket: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Agent {
    pub fn start() -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-agent-")
            .tempdir()
            .expect("create a temporary directory");
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start ssh-agent (openssh-client)");
        let agent = Agent {
            socket,
            child,
            _dir: dir,
        };
        let started = Instant::now();
        while !agent.socket.exists() {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "ssh-agent did not create its socket"
            );
            sleep(Duration::from_millis(20));
        }
        agent
    }

    /// Load the passphrase-less private key `key` into the agent.
    pub fn add(&self, key: &Path) {
        let status = Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::null())
            .status()
            .expect("run ssh-add");
        assert!(status.success(), "ssh-add {} failed", key.display());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
