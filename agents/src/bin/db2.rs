//! `db2`: the bundled agent of this service type (see [`haagents::checks::db2`]).

fn main() -> std::process::ExitCode {
    haagents::main::<haagents::checks::db2::Db2>("db2")
}
