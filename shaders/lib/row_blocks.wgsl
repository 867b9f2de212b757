// How the row kernels (softmax, layernorm, cross_entropy, reduce) walk a row of `len` values
// with WG threads (the kernel's override): in blocks of 4 WG values, a thread taking the
// values j, j + WG, j + 2 WG and j + 3 WG of a block, j = lid + a multiple of 4 WG, so that
// each of the four reads is coalesced across the workgroup and every loop pass takes four
// values (on lavapipe one value per pass paid the loop's overhead for each). No entry point.

// The four values' positions in the row, which of them are in it, and the positions to read
// (the row's last for those outside, whose values are unused; len >= 1).
struct Block {
    inside: vec4<bool>,
    at: vec4<u32>,
    i: vec4<u32>,
}

fn block_at(j: u32, len: u32) -> Block {
    let at = vec4(j, j + WG, j + 2u * WG, j + 3u * WG);
    let last = vec4(len - 1u);
    return Block(at <= last, at, min(at, last));
}
