//! Where the generator's choices come from: a seeded PRNG (the test run) or
//! the fuzzer's bytes (the `cargo fuzz` target). Same generator, same model.

/// A stream of choices.
pub trait Source {
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64;
    /// Any 64-bit value.
    fn any(&mut self) -> u64;
    /// True once a byte source ran dry: the sequence should end.
    fn exhausted(&self) -> bool {
        false
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// An index into `weights`, chosen in proportion to the weights.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total.max(1));
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
    /// One element of a non-empty slice.
    fn pick<T: Copy>(&mut self, items: &[T]) -> T
    where
        Self: Sized,
    {
        items[self.below(items.len() as u64) as usize]
    }
}

/// splitmix64: tiny, good enough, and identical everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5eed_5eed_5eed_5eed)
    }
}

impl Source for Rng {
    fn any(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.any() % n.max(1)
    }
}

/// Choices read from fuzzer input: each choice eats as few bytes as its
/// range needs; when the bytes run out every choice is 0 and `exhausted()`
/// says so.
#[derive(Debug)]
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
    dry: bool,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes {
            data,
            pos: 0,
            dry: false,
        }
    }

    fn take(&mut self, n: usize) -> u64 {
        let mut v = 0u64;
        for _ in 0..n {
            let b = match self.data.get(self.pos) {
                Some(b) => *b,
                None => {
                    self.dry = true;
                    0
                }
            };
            self.pos += 1;
            v = (v << 8) | u64::from(b);
        }
        v
    }
}

impl Source for Bytes<'_> {
    fn any(&mut self) -> u64 {
        self.take(8)
    }

    fn below(&mut self, n: u64) -> u64 {
        let n = n.max(1);
        let bytes = match n {
            0..=256 => 1,
            257..=65_536 => 2,
            _ => 8,
        };
        self.take(bytes) % n
    }

    fn exhausted(&self) -> bool {
        self.dry
    }
}
