//! Scheduled (no HTTP route; template.yaml's `OfferSweepSchedule`): releases the claim
//! reservations whose attempt died unfinished, giving each place back and disabling the
//! claim's credential user on its HAT (dex::offers::sweep). Answers the run's
//! `SweepReport`; a store error fails the invocation, so the schedule tries again.

use dex::DexResult;
use dex_lambda::App;
use serde_json::Value;

async fn handle(app: &App, _event: Value) -> DexResult<Value> {
    let calls = app.hat_calls()?;
    let report = app.reservation_sweep(&calls).sweep().await?;
    serde_json::to_value(report)
        .map_err(|e| dex::DexError::internal(format!("the sweep's report: {e}")))
}

dex_lambda::scheduled_main!(handle, needs: TABLE | HATS);
