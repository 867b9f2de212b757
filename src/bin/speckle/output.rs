//! Output folders of the studies and demos: checked before the work, written all at once.

use std::path::{Path, PathBuf};

use speckle::{Error, Result};

/// Creates `dir` if needed and checks that a file can be written there, before any work.
/// Returns whether it was created (so a failed run can remove it again).
pub fn prepare_dir(dir: &Path) -> Result<bool> {
    let existed = dir.is_dir();
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating the output folder {}", dir.display()), e))?;
    let probe = dir.join(format!(".speckle-write-test-{}", std::process::id()));
    let written = std::fs::write(&probe, b"");
    let _ = std::fs::remove_file(&probe);
    if let Err(e) = written {
        if !existed {
            let _ = std::fs::remove_dir(dir);
        }
        return Err(Error::io(
            format!("writing into the output folder {}", dir.display()),
            e,
        ));
    }
    Ok(!existed)
}

/// Writes every (name, bytes) into `dir`, each atomically; if one fails, the ones already
/// written are removed, so a run leaves all its files or none. Returns the paths.
pub fn write_all(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<Vec<PathBuf>> {
    let mut done: Vec<PathBuf> = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Err(e) = speckle::atomic::write_atomic(&path, bytes) {
            for p in &done {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        done.push(path);
    }
    Ok(done)
}

/// A progress bar over `len` `unit`s on standard error, hidden when `silent` (`--json`, `-q`)
/// or when standard error is not a terminal.
pub fn progress_bar(len: u64, unit: &str, silent: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if silent || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{msg}}"
        ))
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    bar
}
