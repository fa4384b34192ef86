fn main() -> std::process::ExitCode {
    lambda_stage_repo_xtask::main()
}
