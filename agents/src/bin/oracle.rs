//! `oracle`: the bundled agent of this service type (see [`haagents::checks::oracle`]).

fn main() -> std::process::ExitCode {
    haagents::main::<haagents::checks::oracle::Oracle>("oracle")
}
