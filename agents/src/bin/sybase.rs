//! `sybase`: the bundled agent of this service type (see [`haagents::checks::sybase`]).

fn main() -> std::process::ExitCode {
    haagents::main::<haagents::checks::sybase::Sybase>("sybase")
}
