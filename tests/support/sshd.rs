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
    authorized_keys: PathBuf,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sshd {
    /// Start sshd on a free port of 127.0.0.1 and wait until it answers.
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (scripts/test.sh does)"
        );
        fs::create_dir_all("/run/sshd")
            .expect("create /run/sshd (sshd's privilege separation dir)");
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-sshd-")
            .tempdir()
            .expect("create a temporary directory");
        let host_key = generate_key(dir.path(), "host_ed25519");
        let authorized_keys = dir.path().join("authorized_keys");
        File::create(&authorized_keys).expect("create authorized_keys");
        let port = free_port();
        let config = dir.path().join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPidFile none\n\
                 LogLevel VERBOSE\n",
                host_key.display(),
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
            host_key,
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

    /// The known_hosts line that trusts this server: `[127.0.0.1]:<port> ssh-ed25519 …`.
    pub fn known_hosts_line(&self) -> String {
        let public = fs::read_to_string(public_half(&self.host_key)).expect("read the host key");
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
    let key = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
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
