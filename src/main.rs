//! The `hoopctl` binary: everything happens in [`hoopctl::cli`].

fn main() -> std::process::ExitCode {
    hoopctl::cli::main()
}
