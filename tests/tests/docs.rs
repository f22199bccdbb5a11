//! Every document the repository cites is in the repository (`docs/README.md`): no tracked
//! file may cite the original DEX documents by their old names or paths outside the tree,
//! and every `docs/<page>.md §N` reference must name a page that exists and a section that
//! exists in it. Fast: it reads files, no stack. `scripts/fix-doc-refs.sh` rewrites the old
//! forms mechanically.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The old names, built from pieces so that this file does not cite them itself.
fn forbidden() -> Vec<(String, &'static str)> {
    vec![
        (
            concat!("hat", "-side.md").into(),
            "cite docs/hats.md §N instead",
        ),
        (
            concat!("dex", "-api.md").into(),
            "cite docs/wire-contract.md §N instead",
        ),
        (
            concat!("../", "shared").into(),
            "a path outside the repository; cite a page of docs/",
        ),
        (
            concat!("shared/", "spec").into(),
            "the original DEX documents are not in the repository; cite a page of docs/",
        ),
        (
            concat!("architecture", "-review.md").into(),
            "not in the repository; write what matters into docs/",
        ),
        (
            concat!("local", "-stack.md").into(),
            "not in the repository; write what matters into docs/",
        ),
    ]
}

/// Every tracked file, and every new one git does not ignore (so a bad reference fails
/// before it is committed); a directory walk when this is not a git checkout.
fn repository_files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output();
    let mut files: Vec<PathBuf> = match listed {
        Ok(out) if out.status.success() => out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
            .collect(),
        _ => {
            let mut found = Vec::new();
            walk(root, root, &mut found);
            found
        }
    };
    files.retain(|p| {
        !p.components()
            .any(|c| matches!(c.as_os_str().to_str(), Some("target" | ".git")))
    });
    files.sort();
    files
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if matches!(
            name.to_str(),
            Some("target" | ".git" | ".dex" | "node_modules")
        ) {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out);
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_path_buf());
        }
    }
}

/// A reference found on a line: the page (`decisions` for `docs/decisions.md`) and the
/// sections it names, possibly none.
#[derive(Debug, PartialEq)]
struct Reference {
    page: String,
    sections: Vec<String>,
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':' | '~')
}

/// Reads `§1`, `§3.4`, `§2, §7`, `§3.2/§6.1`, `§1-§2`, `§4 and §5` from the start of `text`.
fn section_list(text: &str) -> Vec<String> {
    let mut sections = Vec::new();
    let mut rest = text;
    while let Some(after) = rest.strip_prefix('§') {
        let number: String = after
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.');
        if number.is_empty() {
            break;
        }
        sections.push(number.to_owned());
        rest = &after[number.len()..];
        let next = [", ", ",", "/", " and ", "-", "–", " to "]
            .iter()
            .find_map(|sep| rest.strip_prefix(sep).filter(|r| r.starts_with('§')));
        match next {
            Some(r) => rest = r,
            None => break,
        }
    }
    sections
}

/// Every `docs/<page>.md` on the line, with the sections that follow it.
fn references(line: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    for (at, _) in line.match_indices("docs/") {
        if line[..at].chars().next_back().is_some_and(is_path_char) {
            continue; // part of a longer path or a URL
        }
        let after = &line[at + "docs/".len()..];
        let page: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            .collect();
        let Some(rest) = after[page.len()..].strip_prefix(".md") else {
            continue;
        };
        if page.is_empty() {
            continue;
        }
        let rest = rest.strip_prefix('`').unwrap_or(rest).trim_start();
        found.push(Reference {
            page,
            sections: section_list(rest),
        });
    }
    found
}

/// The sections a list continued from the previous line names (`//! §4, §5; ...`).
fn continued_sections(line: &str) -> Vec<String> {
    let text = line
        .trim_start()
        .trim_start_matches(['/', '!', '#', '*', '-', '>'])
        .trim_start();
    section_list(text)
}

/// The section numbers of a page: headings that start with a number (`## 7. Statistics`,
/// `### 13.2 Offers`, `## §5 ...`).
fn sections_of(page: &str) -> Result<BTreeSet<String>, String> {
    let mut sections = BTreeSet::new();
    let mut in_code = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim_start();
        let title = title.strip_prefix('§').unwrap_or(title);
        let number: String = title
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.');
        if !number.is_empty() && !sections.insert(number.to_owned()) {
            return Err(format!("§{number} is the heading of two sections"));
        }
    }
    Ok(sections)
}

/// What is wrong with one file's text, as `(line number, message)`.
fn problems(
    text: &str,
    page_sections: &dyn Fn(&str) -> Option<BTreeSet<String>>,
) -> Vec<(usize, String)> {
    let needles = forbidden();
    let decisions = concat!("decisions", ".md");
    let mut out = Vec::new();
    let mut last_page: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let lower = line.to_ascii_lowercase();
        for (needle, hint) in &needles {
            if lower.contains(needle.as_str()) {
                out.push((number, format!("cites {needle}: {hint}")));
            }
        }
        for (at, _) in lower.match_indices(decisions) {
            if !lower[..at].ends_with("docs/") {
                out.push((
                    number,
                    format!("cites {decisions} outside docs/: cite docs/{decisions} §N"),
                ));
            }
        }
        for (at, _) in lower.match_indices("decisions") {
            if lower[at + "decisions".len()..]
                .trim_start()
                .starts_with('§')
            {
                out.push((
                    number,
                    "cites the decisions by section alone: cite docs/decisions.md §N".into(),
                ));
            }
        }
        let mut found = references(line);
        let continued = continued_sections(line);
        if !continued.is_empty()
            && let Some(page) = &last_page
        {
            found.insert(
                0,
                Reference {
                    page: page.clone(),
                    sections: continued,
                },
            );
        }
        for reference in &found {
            let shown = format!("docs/{}.md", reference.page);
            match page_sections(&reference.page) {
                None => out.push((number, format!("{shown} does not exist"))),
                Some(sections) => {
                    for section in &reference.sections {
                        if !sections.contains(section) {
                            out.push((number, format!("{shown} has no §{section}")));
                        }
                    }
                }
            }
        }
        last_page = found.last().map(|r| r.page.clone());
    }
    out
}

#[test]
fn every_reference_resolves_inside_the_repository() {
    let root = root();
    let files = repository_files(&root);
    assert!(
        files.iter().any(|f| f == Path::new("docs/decisions.md")),
        "the listing of the repository's files misses docs/decisions.md: {} files",
        files.len()
    );
    let mut pages = std::collections::BTreeMap::new();
    for page in std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .flatten()
    {
        let path = page.path();
        if path.extension().is_some_and(|e| e == "md") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("docs pages are text");
            let sections = sections_of(&text).unwrap_or_else(|e| panic!("docs/{name}.md: {e}"));
            pages.insert(name, sections);
        }
    }
    let lookup = |page: &str| pages.get(page).cloned();
    let mut failures = Vec::new();
    let mut scanned = 0;
    for file in &files {
        let Ok(bytes) = std::fs::read(root.join(file)) else {
            continue; // deleted in the working tree
        };
        let Ok(text) = String::from_utf8(bytes) else {
            continue; // not text
        };
        scanned += 1;
        for (line, message) in problems(&text, &lookup) {
            failures.push(format!("{}:{line}: {message}", file.display()));
        }
    }
    assert!(scanned > 50, "only {scanned} text files scanned");
    assert!(
        failures.is_empty(),
        "{} reference(s) do not resolve inside the repository (scripts/fix-doc-refs.sh \
         rewrites the old forms):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_pages_keep_the_original_section_numbers() {
    let root = root();
    let expect = [
        (
            "decisions",
            &["1", "2", "4.1", "4.5", "5", "7", "11", "13", "13.2", "13.7"][..],
        ),
        (
            "wire-contract",
            &[
                "1", "2.2", "3.1", "3.4", "3.6", "4.5", "6.1", "6.2", "6.3", "6.7",
            ][..],
        ),
        ("hats", &["1", "2", "3", "3.1", "3.4", "4", "5", "6"][..]),
        ("data-model", &["1", "4", "9"][..]),
    ];
    for (page, wanted) in expect {
        let text = std::fs::read_to_string(root.join(format!("docs/{page}.md"))).unwrap();
        let sections = sections_of(&text).unwrap();
        for section in wanted {
            assert!(
                sections.contains(*section),
                "docs/{page}.md lacks §{section}: {sections:?}"
            );
        }
    }
}

#[test]
fn the_scanner_finds_what_it_must() {
    let pages = |page: &str| match page {
        "decisions" => Some(BTreeSet::from(["2".to_owned(), "4.1".into(), "7".into()])),
        "hats" => Some(BTreeSet::from(["1".to_owned(), "2".into()])),
        _ => None,
    };
    let check = |text: &str| -> Vec<(usize, String)> { problems(text, &pages) };

    // Resolved references, lists, continued lists and backticks pass.
    assert_eq!(
        check(
            "//! rules (docs/decisions.md §2, §7; docs/hats.md §1-§2)\n\
             //! see `docs/hats.md` §2 and docs/decisions.md §4.1/§7, docs/README\n\
             //! (docs/decisions.md §2,\n//! §7) https://example.com/docs/x.md §9"
        ),
        vec![]
    );
    // Unknown pages and sections, also on a continued line, are named with their line.
    // (The missing page is built from pieces so that scanning this file does not find it.)
    let missing = concat!("docs/", "nope.md");
    let found = check(&format!(
        "a {missing} §1\nb docs/decisions.md §3, §7\nc docs/hats.md §1,\n// §9"
    ));
    assert_eq!(
        found,
        vec![
            (1, format!("{missing} does not exist")),
            (2, "docs/decisions.md has no §3".to_owned()),
            (4, "docs/hats.md has no §9".to_owned()),
        ]
    );
    // Every old form is refused, whatever its path.
    let old = [
        format!("see {} §2", concat!("hat", "-side.md")),
        format!("(decisions {}4)", '§'),
        format!("{} section 4", concat!("decisions", ".md")),
        format!("/work/{}/decisions", concat!("shared/", "spec")),
        format!("{}/spec/x", concat!("../", "shared")),
        format!("{} 6.1", concat!("dex", "-api.md")),
    ];
    for line in &old {
        let found = check(line);
        assert!(!found.is_empty(), "{line:?} passed");
        assert!(found.iter().all(|(n, _)| *n == 1), "{found:?}");
    }
}

#[test]
fn headings_define_sections_and_duplicates_are_refused() {
    let page = "# Title\n## 1. One\n### 1.2 Sub\n```\n## 9. in code\n```\n## §3 Three\n## Notes\n";
    assert_eq!(
        sections_of(page).unwrap(),
        BTreeSet::from(["1".to_owned(), "1.2".into(), "3".into()])
    );
    assert!(sections_of("## 1. One\n## 1. Again\n").is_err());
}
