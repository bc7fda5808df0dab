//! The local AWS emulator: a pinned moto server (DynamoDB + SQS), installed on first use
//! (see [`pinned_tools_dir`]) and started on a free port. Used by the local stack and the tests,
//! never by a Lambda. Everything it needs comes from PyPI; no Docker, no AWS account.

pub mod faults;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Exact versions of moto and all it imports.
pub const MOTO_REQUIREMENTS: &str = include_str!("moto-requirements.txt");

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs moto's server (as `moto_server` does, plus the fixes below) and exits by itself
/// when the process that started it is gone, so a killed test run or local stack never
/// leaves an emulator behind.
const LAUNCHER: &str = r#"
import os, sys, threading, time
parent = os.getppid()
def watch_parent():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch_parent, daemon=True).start()

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

# moto keeps every model instance it ever made (every item, message and table copy) for its
# dashboard: memory grows without bound (20 GB in a long soak). The dashboard isn't used.
import copy
from moto.core import common_models
common_models.BaseModel.__new__ = staticmethod(lambda cls, *args, **kwargs: object.__new__(cls))

# TransactWriteItems deep-copies each table it touches so that it can roll back: seconds per
# call once a table holds thousands of items. Snapshot only the items the transaction names
# and restore those on rollback (what DynamoDB promises is the same: all or nothing).
import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.exceptions import TransactionCanceledException, MultipleTransactionsException, MockValidationException
from moto.dynamodb.models.table import Table

class _TablesKept:
    @staticmethod
    def deepcopy(value, *args, **kwargs):
        return value if isinstance(value, Table) else copy.deepcopy(value, *args, **kwargs)
    def __getattr__(self, name):
        return getattr(copy, name)

_transact = dynamodb_models.DynamoDBBackend.transact_write_items

def _key_of(table, op_type, op):
    if op_type != "Put":
        return op["Key"]
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key

def transact_write_items(self, transact_items):
    snapshots = []
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        table = self.tables.get(op.get("TableName"))
        if table is None:
            continue
        try:
            key = _key_of(table, op_type, op)
            current = self.get_item(table.name, key)
        except Exception:
            continue
        snapshots.append((table.name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
    dynamodb_models.copy = _TablesKept()
    try:
        return _transact(self, transact_items)
    except (TransactionCanceledException, MultipleTransactionsException, MockValidationException):
        for table_name, key, attributes in reversed(snapshots):
            if attributes is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.put_item(table_name, attributes)
        raise
    finally:
        dynamodb_models.copy = copy

dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items

# A FIFO group stays "pending" in moto until its in-flight messages are met one by one in a
# receive, so when a group's head and the message behind it are both visible again, the
# head is skipped (the later message still counts as pending) and the later one handed out
# first. SQS never does that: forget every message whose visibility ran out before looking.
import moto.sqs.models as sqs_models

_receive_message = sqs_models.SQSBackend.receive_message

def receive_message(self, queue_name, *args, **kwargs):
    queue = self.get_queue(queue_name)
    for message in [m for m in queue.pending_messages if m.visible]:
        queue.pending_messages.discard(message)
    return _receive_message(self, queue_name, *args, **kwargs)

sqs_models.SQSBackend.receive_message = receive_message

# moto's backends are not thread-safe: a TransactWriteItems deep-copies a table another
# request is changing (and answers 500), and two concurrent ReceiveMessage calls can both
# take messages of one FIFO group. One request at a time; callers must not long-poll.
one_at_a_time = threading.Lock()
moto_app = DomainDispatcherApplication(create_backend_app)
moto_app.debug = True

def app(environ, start_response):
    with one_at_a_time:
        return list(moto_app(environ, start_response))

# werkzeug's development server answers every request with `Connection: close`, so each AWS
# call opens a new connection here (AWS keeps them alive): benches count that as emulator cost.
os.environ.setdefault("MOTO_PORT", sys.argv[1])
run_simple(sys.argv[2], int(sys.argv[1]), app, threaded=True, request_handler=MotoRequestHandler)
"#;

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("python3 is needed to run the moto emulator: {0}")]
    Python(String),
    #[error("installing a pinned Python tool failed: {0}")]
    Install(String),
    #[error("moto did not start: {0}")]
    Start(String),
}

/// A running moto server; stopped when dropped.
pub struct MotoServer {
    child: Child,
    endpoint: String,
}

impl MotoServer {
    /// Installs moto if needed and starts it on a free port of 127.0.0.1. Its request log
    /// goes to `log` (or nowhere).
    pub fn start(log: Option<&Path>) -> Result<Self, EmulatorError> {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), None, log)
    }

    /// Starts moto listening on `address`, on `port` (a taken one is an error naming it) or
    /// a free one. Its endpoint names `address`, or 127.0.0.1 when `address` is every
    /// interface (0.0.0.0, ::).
    pub fn start_on(address: IpAddr, port: Option<u16>, log: Option<&Path>) -> Result<Self, EmulatorError> {
        let site = install_pinned("moto", MOTO_REQUIREMENTS)?;
        let port = match port {
            Some(port) => {
                TcpListener::bind((address, port))
                    .map_err(|e| EmulatorError::Start(format!("port {port} on {address}: {e}")))?;
                port
            }
            None => free_port().map_err(|e| EmulatorError::Start(format!("no free port: {e}")))?,
        };
        let reach = reachable(address);
        let stdout = match log {
            Some(path) => {
                let open = || {
                    if let Some(folder) = path.parent() {
                        std::fs::create_dir_all(folder)?;
                    }
                    std::fs::File::create(path).and_then(|_| std::fs::OpenOptions::new().append(true).open(path))
                };
                Stdio::from(open().map_err(|e| EmulatorError::Start(format!("{}: {e}", path.display())))?)
            }
            None => Stdio::null(),
        };
        let child = Command::new(python())
            .arg("-c")
            .arg(LAUNCHER)
            .arg(port.to_string())
            .arg(address.to_string())
            .env("PYTHONPATH", &site)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| EmulatorError::Python(e.to_string()))?;
        let endpoint = match reach {
            IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
            IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        };
        let mut server = Self { child, endpoint };
        server.wait_until_ready(SocketAddr::new(reach, port))?;
        // Its request log is on stderr: drain it to the log file or drop it, so a full
        // pipe never blocks the emulator.
        if let Some(mut stderr) = server.child.stderr.take() {
            let mut sink: Box<dyn std::io::Write + Send> =
                match log.and_then(|p| std::fs::OpenOptions::new().append(true).open(p).ok()) {
                    Some(file) => Box::new(file),
                    None => Box::new(std::io::sink()),
                };
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut stderr, &mut sink);
            });
        }
        Ok(server)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn wait_until_ready(&mut self, address: SocketAddr) -> Result<(), EmulatorError> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return Err(EmulatorError::Start(format!("exited with {status}: {}", stderr.trim())));
            }
            if TcpStream::connect(address).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(EmulatorError::Start(format!("not listening after {START_TIMEOUT:?}")))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Scratch space for tools' logs and files: `target/tools` of this workspace.
pub fn tools_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).join("target"));
    target.join("tools")
}

/// Where pinned tools are installed, one folder per name and exact pin set, shared by every
/// clone on the machine (as cargo shares its registry): `$BRIDGE_TOOLS_DIR`, else
/// `$XDG_CACHE_HOME/sms-whatsapp-bridge/tools`, else `~/.cache/sms-whatsapp-bridge/tools`,
/// else (no home) [`tools_dir`]. A folder is complete once it holds `.installed` and is
/// never changed after: a changed pin is another folder.
pub fn pinned_tools_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("BRIDGE_TOOLS_DIR") {
        return dir;
    }
    match var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|home| home.join(".cache"))) {
        Some(cache) => cache.join("sms-whatsapp-bridge").join("tools"),
        None => tools_dir(),
    }
}

/// Installs a pinned set of PyPI requirements into its own folder under
/// [`pinned_tools_dir`], once per distinct set, and returns that folder (to put on
/// `PYTHONPATH`). Concurrent callers (parallel test binaries, two clones) each install into
/// a staging folder and the first rename wins.
pub fn install_pinned(name: &str, requirements: &str) -> Result<PathBuf, EmulatorError> {
    let digest = hex::encode(&Sha256::digest(requirements.as_bytes())[..6]);
    let tools = pinned_tools_dir();
    let dir = tools.join(format!("{name}-{digest}"));
    if dir.join(".installed").exists() {
        return Ok(dir);
    }
    let install_error = |e: std::io::Error| EmulatorError::Install(format!("{name}: {e}"));
    std::fs::create_dir_all(&tools).map_err(install_error)?;
    let staging = tools.join(format!("{name}-{digest}.{}.partial", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let requirements_file = tools.join(format!("{name}-requirements-{}.txt", std::process::id()));
    std::fs::write(&requirements_file, requirements).map_err(install_error)?;
    eprintln!("installing pinned {name} into {} (first run only)", dir.display());
    let output = Command::new(python())
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"])
        .args(["--ignore-installed", "--no-warn-conflicts", "--no-warn-script-location"])
        .arg("--target")
        .arg(&staging)
        .arg("-r")
        .arg(&requirements_file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| EmulatorError::Python(e.to_string()))?;
    let _ = std::fs::remove_file(&requirements_file);
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(EmulatorError::Install(format!("{name}: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    std::fs::write(staging.join(".installed"), requirements).map_err(install_error)?;
    if std::fs::rename(&staging, &dir).is_err() {
        // Another process finished first; use its copy.
        let _ = std::fs::remove_dir_all(&staging);
        if !dir.join(".installed").exists() {
            return Err(EmulatorError::Install(format!("{name}: could not move the install into {}", dir.display())));
        }
    }
    Ok(dir)
}

/// The Python interpreter: `$PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Where a server listening on `address` is reached from this machine: the address itself,
/// or the loopback one when it listens on every interface.
pub fn reachable(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        other => other,
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
