//! `informix`: the bundled agent of this service type (see [`haagents::checks::informix`]).

fn main() -> std::process::ExitCode {
    haagents::main::<haagents::checks::informix::Informix>("informix")
}
