//! `generic`: the bundled agent of this service type (see [`haagents::checks::generic`]).

fn main() -> std::process::ExitCode {
    haagents::main::<haagents::checks::generic::Generic>("generic")
}
