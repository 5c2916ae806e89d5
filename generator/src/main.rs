fn main() -> anyhow::Result<()> {
    println!("cahier: not built yet");
    Ok(())
}
