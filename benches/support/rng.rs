//! xorshift64*: a deterministic, fast generator for the benches' synthetic
//! inputs (not cryptographic). Shared by the benches through `#[path]`.

/// xorshift64* state.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A version-4 UUID string, as gateways log request ids.
    pub fn uuid(&mut self) -> String {
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            self.next() as u32,
            self.next() as u16,
            self.next() as u16 & 0xfff,
            (self.next() as u16 & 0x3fff) | 0x8000,
            self.next() & 0xffff_ffff_ffff
        )
    }
}
