//! The function under a Lambda runtime: cargo-lambda's emulator of the Lambda runtime and
//! function-URL APIs (from the test virtualenv), and the real `cahier-function` binary started
//! with `AWS_LAMBDA_RUNTIME_API` pointing at it, so `lambda_http::run` serves the requests.
//! Both processes are killed when the guard drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The function name the emulator serves when it does not start the function itself.
const FUNCTION_NAME: &str = "_";

pub struct LambdaFunction {
    emulator: Child,
    function: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT/lambda-url/_`: the function URL; append `/api/...`.
    pub url: String,
}

fn cargo_lambda() -> PathBuf {
    let bin = crate::smtp::venv_python().with_file_name("cargo-lambda");
    assert!(
        bin.exists(),
        "{} missing: run scripts/test.sh (it installs tests/requirements.txt into the venv)",
        bin.display()
    );
    bin
}

fn wait_port(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 20 s");
}

impl LambdaFunction {
    /// Starts the emulator and the function binary in `dir` with `args` (manifest, store,
    /// mailer) and `env` (secrets, captcha verify URL).
    pub fn start(dir: &Path, args: &[String], env: &[(String, String)]) -> LambdaFunction {
        let port = crate::free_port();
        let emulator_log = dir.join("emulator.log");
        let mut emulator = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            // It reads the package's Cargo.toml for defaults; the function's crate is the one.
            .current_dir(crate::repo_root().join("function"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&emulator_log).expect("emulator log"))
            .stderr(Stdio::from(
                std::fs::File::options()
                    .append(true)
                    .open(&emulator_log)
                    .expect("emulator log"),
            ))
            .spawn()
            .expect("spawning cargo-lambda");
        wait_port(port, &mut emulator, "cargo lambda watch", &emulator_log);
        let function_log = dir.join("function.log");
        let function = Command::new(crate::server::binary())
            .args(args)
            .current_dir(dir)
            .env_remove("CAHIER_SECRETS_FILE")
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "0")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&function_log).expect("function log"))
            .stderr(Stdio::from(
                std::fs::File::options()
                    .append(true)
                    .open(&function_log)
                    .expect("function log"),
            ))
            .spawn()
            .expect("spawning cahier-function under the emulator");
        LambdaFunction {
            emulator,
            function,
            dir: dir.to_path_buf(),
            url: format!("http://127.0.0.1:{port}/lambda-url/{FUNCTION_NAME}"),
        }
    }

    /// The emulator's invoke endpoint (the Lambda Invoke API): the caller writes the event
    /// itself, e.g. a function-URL event with the `sourceIp` and authorizer AWS would set.
    pub fn invoke_url(&self) -> String {
        self.url.replace(
            &format!("/lambda-url/{FUNCTION_NAME}"),
            &format!("/2015-03-31/functions/{FUNCTION_NAME}/invocations"),
        )
    }

    /// The function process's id (its environment is in `/proc/PID/environ`).
    pub fn pid(&self) -> u32 {
        self.function.id()
    }

    /// The function's own log (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("function.log")).unwrap_or_default()
    }

    /// Panics with the log if the function process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.function.try_wait() {
            panic!("cahier-function exited with {status}:\n{}", self.log());
        }
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        for child in [&mut self.function, &mut self.emulator] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
