//! `agentbridge --version` names the crate version and the commit the binary was built from.

use std::process::Command;

#[test]
fn version_names_the_crate_version_and_the_git_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_agentbridge"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with(&format!(
            "agentbridge {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{line}"
    );
    // Built from a git checkout (as this test is), the commit is HEAD's; without git the
    // build says `unknown` rather than failing.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let expected = match (std::env::var("AGENTBRIDGE_GIT_COMMIT"), head) {
        (Ok(c), _) if !c.trim().is_empty() && c.trim() != "unknown" => c.trim().to_string(),
        (_, Some(h)) => h,
        _ => "unknown".to_string(),
    };
    assert!(
        line.contains(&format!("(commit {expected})")),
        "{line} lacks {expected}"
    );
}
