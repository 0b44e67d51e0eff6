//! `www`: the bundled agent of this service type (see [`haagents::checks::www`]).

fn main() -> std::process::ExitCode {
    haagents::main::<haagents::checks::www::Www>("www")
}
