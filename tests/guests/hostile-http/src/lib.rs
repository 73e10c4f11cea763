//! A guest that misbehaves on request, so the host's defences are tested
//! against a real component rather than a mock:
//! - `/loop`: spins forever without ever calling the host;
//! - `/alloc?mib=N`: allocates and touches N MiB of linear memory;
//! - anything else: 200 "ok".

use spin_sdk::http::{Request, Response};

#[spin_sdk::http_component]
fn handle(req: Request) -> anyhow::Result<Response> {
    let path = req.path();
    if path.ends_with("/loop") {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    if path.ends_with("/alloc") {
        let mib: usize = req
            .query()
            .split('&')
            .find_map(|kv| kv.strip_prefix("mib="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut block = vec![0u8; mib << 20];
        for i in (0..block.len()).step_by(4096) {
            block[i] = 1;
        }
        let touched = std::hint::black_box(&block).iter().step_by(4096).filter(|b| **b == 1).count();
        return Ok(Response::new(200, format!("allocated {mib} MiB ({touched} pages)")));
    }
    Ok(Response::new(200, "ok"))
}
