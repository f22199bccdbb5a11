//! The release build (optional, timed) and the size of every binary and of its Lambda zip.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// A binary's size and its Lambda zip's (`bootstrap`, deflate -9), in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub binary: u64,
    pub zip: u64,
}

/// Builds the release binaries of `packages`, returning the wall time in seconds.
pub fn build(root: &Path, packages: &[String]) -> Result<f64, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "--release", "--bins"]);
    for p in packages {
        command.args(["-p", p]);
    }
    eprintln!("dex-bench: building {} release packages…", packages.len());
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The sizes of the release binaries `required` and of those of `optional` that are built;
/// `work` is a scratch folder.
pub fn sizes(
    target: &Path,
    required: &[String],
    optional: &[&str],
    work: &Path,
) -> Result<BTreeMap<String, Size>, String> {
    let mut sizes = BTreeMap::new();
    let optional = optional
        .iter()
        .filter(|name| target.join("release").join(name).is_file())
        .map(|name| name.to_string());
    for name in required.iter().cloned().chain(optional) {
        let binary = target.join("release").join(&name);
        let size = std::fs::metadata(&binary)
            .map_err(|e| {
                format!(
                    "{}: {e} (build with --build, or cargo build --release --bins -p {name})",
                    binary.display()
                )
            })?
            .len();
        let zip = zipped_size(&binary, &work.join(&name))?;
        sizes.insert(name, Size { binary: size, zip });
    }
    let _ = std::fs::remove_dir_all(work);
    Ok(sizes)
}

/// The size of the Lambda zip: one entry named `bootstrap`, deflate level 9 (the `zip` CLI, or
/// Python's zipfile when it is missing).
fn zipped_size(binary: &Path, work: &Path) -> Result<u64, String> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let bootstrap = work.join("bootstrap");
    if std::fs::hard_link(binary, &bootstrap).is_err() {
        std::fs::copy(binary, &bootstrap)
            .map_err(|e| format!("copying {}: {e}", binary.display()))?;
    }
    let zip = work.join("function.zip");
    let zip_cli = Command::new("zip")
        .current_dir(work)
        .args(["-q", "-9", "-X", "function.zip", "bootstrap"])
        .output();
    let output = match zip_cli {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Command::new("python3")
            .current_dir(work)
            .args([
                "-c",
                "import zipfile\n\
                 with zipfile.ZipFile('function.zip', 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z:\n    \
                 z.write('bootstrap')",
            ])
            .output()
            .map_err(|e| format!("neither zip nor python3 can run: {e}"))?,
        other => other.map_err(|e| format!("zip: {e}"))?,
    };
    if !output.status.success() {
        return Err(format!(
            "zipping {}: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let size = std::fs::metadata(&zip)
        .map_err(|e| format!("{}: {e}", zip.display()))?
        .len();
    let _ = std::fs::remove_dir_all(work);
    Ok(size)
}
