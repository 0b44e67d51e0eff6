//! One task per service that carries out its machine's requests in order
//! (a step or a probe) and reports each result, so a probe
//! never overtakes the step before it and only one step runs at a time.

use hasvrd::service::{Status, Step};
use hasvrd::steps::Steps;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A request for a service's worker.
#[derive(Clone, Copy, Debug)]
pub enum Job {
    Start(Step),
    Stop(Step),
    Probe,
}

/// A finished job of service `service`.
pub struct Done {
    pub service: String,
    pub result: Outcome,
}

/// What a job ended with.
pub enum Outcome {
    Started(Step, Result<(), String>),
    Stopped(Step, Result<(), String>),
    Probed(Status),
}

/// Starts the worker of `service`; jobs sent on the returned channel run in
/// order, and their results go to `done`.
pub fn spawn(
    service: String,
    steps: Arc<Steps>,
    done: mpsc::UnboundedSender<Done>,
) -> mpsc::UnboundedSender<Job> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let result = match job {
                Job::Start(step) => Outcome::Started(step, steps.start(step).await),
                Job::Stop(step) => Outcome::Stopped(step, steps.stop(step).await),
                Job::Probe => Outcome::Probed(steps.probe().await),
            };
            let service = service.clone();
            if done.send(Done { service, result }).is_err() {
                return;
            }
        }
    });
    tx
}
