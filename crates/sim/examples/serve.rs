//! Runs a simulator until Ctrl-C: `cargo run -p ferry-sim --example serve -- KUBECONFIG [SPEED]`.
//! (`ferry sim` is the full command; this is the library alone, for working on the simulator.)

use ferry_sim::{Sim, SimConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let kubeconfig = args.next().unwrap_or_else(|| "kubeconfig".to_owned());
    let speed: f64 = args.next().map_or(Ok(1.0), |s| s.parse())?;
    let tls = args.next().is_some_and(|t| t == "tls");
    let sim = Sim::builder()
        .config(SimConfig {
            speed,
            ..SimConfig::default()
        })
        .tls(tls)
        .start()
        .await?;
    sim.write_kubeconfig(std::path::Path::new(&kubeconfig))?;
    #[expect(
        clippy::print_stdout,
        reason = "an example program reports where it listens"
    )]
    {
        println!("{} (kubeconfig {kubeconfig})", sim.url());
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await?;
    Ok(())
}
