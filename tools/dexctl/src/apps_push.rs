//! `dexctl apps push`: update-application from the operator's machine (docs/decisions.md §13
//! "update-application"): the same push as the function, following `next` to the end, with a
//! progress line and the failed HATs and their reasons at the end.

use std::io::{Read, Write};

use dex::hats::push::{HatFilter, PushRequest, PushStatus};
use dex::page::PageRequest;
use dex_lambda::App;

use super::{Args, fail};

pub(crate) const USAGE: &str = "\
  dexctl apps push --cluster DOMAIN [--filter PATTERNS] [--service-file FILE]
                   push a legacy HatService (JSON from FILE, else stdin) to the cluster's HATs
                   (PATTERNS: addresses or * patterns, comma-separated); exits 1 if any failed
";

/// How many HATs the selection holds (for the progress line), read page by page.
async fn selected(app: &App, cluster: &str, filter: Option<&str>) -> Result<usize, String> {
    let filter = HatFilter::parse(filter).map_err(fail)?;
    let mut count = 0;
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let found = app
            .clusters()
            .hats(Some(cluster), page)
            .await
            .map_err(fail)?;
        count += found
            .items
            .iter()
            .filter(|h| filter.as_ref().is_none_or(|f| f.matches(&h.address)))
            .count();
        match found.cursor {
            Some(c) => page = PageRequest::parse(None, Some(&c)).map_err(fail)?,
            None => return Ok(count),
        }
    }
}

pub(crate) async fn push(app: &App, mut args: Args) -> Result<(), String> {
    let cluster = args.value("--cluster")?.ok_or("--cluster is required")?;
    let filter = args.value("--filter")?;
    let file = args.value("--service-file")?;
    let rest = args.finish()?;
    if !rest.is_empty() {
        return Err(format!("usage:\n{USAGE}"));
    }
    let body = match file {
        Some(path) => std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?,
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| e.to_string())?;
            body
        }
    };
    let total = selected(app, &cluster.trim().to_lowercase(), filter.as_deref()).await?;
    let calls = app.hat_calls().map_err(fail)?;
    let (mut done, mut failed) = (0usize, Vec::new());
    let mut cursor: Option<String> = None;
    loop {
        let answer = app
            .pushes()
            .push(
                &calls,
                PushRequest {
                    cluster: Some(&cluster),
                    hat_filter: filter.as_deref(),
                    cursor: cursor.as_deref(),
                    body: &body,
                },
            )
            .await
            .map_err(fail)?;
        done += answer.results.len();
        failed.extend(
            answer
                .results
                .into_iter()
                .filter(|r| r.status == PushStatus::Failed),
        );
        // HATs registered meanwhile may make `done` pass the count read at the start.
        eprint!(
            "\rpushed to {done} of {} HATs, {} failed",
            total.max(done),
            failed.len()
        );
        let _ = std::io::stderr().flush();
        match answer.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    eprintln!();
    for f in &failed {
        println!("{}\t{}", f.hat, f.reason.as_deref().unwrap_or("failed"));
    }
    if failed.is_empty() {
        println!("updated {done} HATs");
        Ok(())
    } else {
        Err(format!(
            "{} of {done} HATs failed (listed above)",
            failed.len()
        ))
    }
}
