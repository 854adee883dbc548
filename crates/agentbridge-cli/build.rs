//! Puts the git commit into `agentbridge --version`: `AGENTBRIDGE_GIT_COMMIT` when set (image
//! builds, which do not send `.git`), else `git rev-parse HEAD`, else `unknown` (a source
//! tarball, no git installed). Never fails the build.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=AGENTBRIDGE_GIT_COMMIT");
    let commit = std::env::var("AGENTBRIDGE_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty() && c != "unknown")
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=AGENTBRIDGE_COMMIT={commit}");
}

/// The short commit of HEAD, and a rerun whenever HEAD moves (commit, checkout, reset).
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // `--git-path` finds these in a linked worktree too. A missing path would make cargo
    // rerun this script on every build, so only existing files are named.
    for name in ["HEAD", "logs/HEAD"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}
