//! The fault controller of the fault phase (scripts/faults.sh starts it; the fault tests
//! drive it): it runs DynamoDB Local on disk as its child, so that it can stop (SIGTERM,
//! SIGKILL after 10 s) and restart it on the same port and data, and it holds the port the
//! functions know as Secrets Manager, in front of moto, which it can open, cut (nothing
//! listens, every connection it carried is dropped) or stall (connections accepted, never
//! answered).
//!
//! Usage: fault-ctl CONTROL_PORT SECRETS_PORT MOTO_PORT DYNAMODB_PORT DYNAMODB_DIR DATA_DIR
//! (DYNAMODB_DIR holds DynamoDBLocal.jar and DynamoDBLocal_lib). It answers one command per
//! line on 127.0.0.1:CONTROL_PORT with one line, `ok ...` or `error ...`:
//! `dynamodb stop|start`, `secrets open|cut|stall`. Everything it starts is in its process
//! group, which the scripts stop as a whole.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

#[derive(Clone, Copy, Debug, PartialEq)]
enum GateState {
    Open,
    Cut,
    Stalled,
}

/// The Secrets Manager port: while open, each connection is forwarded to moto.
struct Gate {
    port: u16,
    target: SocketAddr,
    tasks: JoinSet<()>,
}

impl Gate {
    async fn set(&mut self, state: GateState) -> Result<(), String> {
        // Dropping the listener and every forwarded connection: a pooled connection of a
        // function cannot bypass a cut.
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        if state == GateState::Cut {
            return Ok(());
        }
        let listener = bind_with_retries(self.port).await?;
        let target = self.target;
        self.tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if state == GateState::Stalled {
                        std::future::pending::<()>().await;
                    }
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(())
    }
}

async fn bind_with_retries(port: u16) -> Result<TcpListener, String> {
    let mut tries = 0;
    loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) if tries < 100 => {
                tries += 1;
                eprintln!("fault-ctl: rebinding port {port}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(format!("port {port}: {e}")),
        }
    }
}

/// DynamoDB Local on disk, as a child process (std's: tokio's `process` feature would
/// rebuild tokio for the whole workspace).
struct Dynamo {
    port: u16,
    dir: PathBuf,
    data: PathBuf,
    child: Option<Child>,
}

impl Dynamo {
    async fn start(&mut self) -> Result<String, String> {
        if let Some(child) = &self.child {
            return Ok(format!("already running (pid {})", child.id()));
        }
        let mut child = Command::new("java")
            .arg(format!(
                "-Djava.library.path={}",
                self.dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(self.dir.join("DynamoDBLocal.jar"))
            .arg("-dbPath")
            .arg(&self.data)
            .args(["-sharedDb", "-port", &self.port.to_string()])
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("java: {e}"))?;
        let pid = child.id();
        for _ in 0..1200 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                self.child = Some(child);
                return Ok(format!("started (pid {pid})"));
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("DynamoDB Local exited at start: {status}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        Err("DynamoDB Local not listening after 120 s".into())
    }

    async fn stop(&mut self) -> Result<String, String> {
        let Some(mut child) = self.child.take() else {
            return Ok("not running".into());
        };
        let pid = child.id();
        // SIGTERM first, so that DynamoDB Local closes its database: killed outright mid-run,
        // it was once seen to come back without a transaction it had acknowledged (a stats
        // report's markers and log entry), which is the emulator's loss, not DEX's. For DEX
        // the effect is the same: connections drop and nothing listens until `start`.
        let terminated = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if terminated {
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return Ok(format!("stopped (pid {pid})"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        child.kill().map_err(|e| format!("kill: {e}"))?;
        child.wait().map_err(|e| format!("wait: {e}"))?;
        Ok(format!("killed (pid {pid})"))
    }
}

struct Faults {
    gate: Mutex<Gate>,
    dynamo: Mutex<Dynamo>,
}

impl Faults {
    async fn run(&self, command: &str) -> Result<String, String> {
        match command.split_whitespace().collect::<Vec<_>>()[..] {
            ["dynamodb", "stop"] => self.dynamo.lock().await.stop().await,
            ["dynamodb", "start"] => self.dynamo.lock().await.start().await,
            ["secrets", state] => {
                let state = match state {
                    "open" => GateState::Open,
                    "cut" => GateState::Cut,
                    "stall" => GateState::Stalled,
                    other => return Err(format!("unknown secrets state {other:?}")),
                };
                self.gate.lock().await.set(state).await?;
                Ok(format!("secrets {state:?}"))
            }
            _ => Err(format!("unknown command {command:?}")),
        }
    }
}

fn arg(args: &[String], i: usize, what: &str) -> String {
    args.get(i).cloned().unwrap_or_else(|| {
        eprintln!(
            "usage: fault-ctl CONTROL_PORT SECRETS_PORT MOTO_PORT DYNAMODB_PORT DYNAMODB_DIR DATA_DIR ({what} missing)"
        );
        std::process::exit(2)
    })
}

fn port(args: &[String], i: usize, what: &str) -> u16 {
    arg(args, i, what).parse().unwrap_or_else(|e| {
        eprintln!("fault-ctl: {what}: {e}");
        std::process::exit(2)
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let control = port(&args, 0, "CONTROL_PORT");
    let faults = Arc::new(Faults {
        gate: Mutex::new(Gate {
            port: port(&args, 1, "SECRETS_PORT"),
            target: SocketAddr::from(([127, 0, 0, 1], port(&args, 2, "MOTO_PORT"))),
            tasks: JoinSet::new(),
        }),
        dynamo: Mutex::new(Dynamo {
            port: port(&args, 3, "DYNAMODB_PORT"),
            dir: arg(&args, 4, "DYNAMODB_DIR").into(),
            data: arg(&args, 5, "DATA_DIR").into(),
            child: None,
        }),
    });
    for command in ["secrets open", "dynamodb start"] {
        match faults.run(command).await {
            Ok(done) => eprintln!("fault-ctl: {command}: {done}"),
            Err(e) => {
                eprintln!("fault-ctl: {command}: {e}");
                std::process::exit(1);
            }
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", control))
        .await
        .unwrap_or_else(|e| {
            eprintln!("fault-ctl: control port {control}: {e}");
            std::process::exit(1)
        });
    eprintln!("fault-ctl: ready on 127.0.0.1:{control}");
    while let Ok((socket, _)) = listener.accept().await {
        let faults = faults.clone();
        tokio::spawn(async move {
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let answer = match faults.run(&line).await {
                    Ok(done) => format!("ok {done}\n"),
                    Err(e) => format!("error {e}\n"),
                };
                eprintln!("fault-ctl: {line}: {}", answer.trim_end());
                if write.write_all(answer.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}
