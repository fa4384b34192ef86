fn main() -> std::process::ExitCode {
    lambda_stage_xtask::main()
}
