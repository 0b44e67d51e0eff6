//! `nfs`: the bundled agent of this service type (see [`haagents::checks::nfs`]).

fn main() -> std::process::ExitCode {
    haagents::main::<haagents::checks::nfs::Nfs>("nfs")
}
