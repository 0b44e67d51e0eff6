//! `mysql`: the bundled agent of this service type (see [`haagents::checks::mysql`]).

fn main() -> std::process::ExitCode {
    haagents::main::<haagents::checks::mysql::Mysql>("mysql")
}
