import Testing
@testable import PBTWaveModel

/// The wavefront's time tiles: they cover the rows in order, each row's tile
/// is found, and with several threads every member gets the same share.
@Suite struct TimeTilesTests {
    /// Checks that `tiles` are non-empty, contiguous ranges covering `rows`,
    /// and that `index(containing:)` names the tile of every row.
    func expectCover(_ tiles: TimeTiles, _ rows: Range<Int>, _ what: String) {
        var next = rows.lowerBound
        for (i, tile) in tiles.enumerated() {
            #expect(tile.lowerBound == next && !tile.isEmpty, "\(what): tile \(i) is \(tile), expected to start at \(next)")
            next = tile.upperBound
            for row in tile where tiles.index(containing: row) != i {
                Issue.record("\(what): row \(row) is in tile \(i), index(containing:) says \(tiles.index(containing: row))")
            }
        }
        #expect(next == rows.upperBound, "\(what): the tiles end at \(next), not \(rows.upperBound)")
    }

    @Test(arguments: [1, 7, 29, 384, 8192, 8191])
    func fixedSizeTilesCoverTheRows(_ n: Int) {
        for size in [1, 4, 5, 48, 384] {
            let tiles = TimeTiles(rows: 3..<(3 + n), size: size)
            expectCover(tiles, 3..<(3 + n), "\(n) rows in tiles of \(size)")
            #expect(tiles.count == (n + size - 1) / size)
            #expect(tiles.dropLast().allSatisfy { $0.count == size }, "every tile but the last has \(size) rows")
        }
    }

    @Test(arguments: [1, 7, 29, 384, 8192, 8191, 1000])
    func equalSharesCoverTheRowsEvenly(_ n: Int) {
        for count in [1, 2, 3, 4, 6, 22, 29] where count <= n {
            for granule in [1, 4, 48] {
                let tiles = TimeTiles(rows: 0..<n, equalShares: count, granule: granule)
                let what = "\(n) rows in \(count) shares on multiples of \(granule)"
                expectCover(tiles, 0..<n, what)
                #expect(tiles.count == count, "\(what): \(tiles.count) tiles")
                // Each tile is n/count rows to within the rounding of its two bounds.
                let g = n / count >= granule ? granule : 1
                for tile in tiles where abs(Double(tile.count) - Double(n) / Double(count)) >= Double(g + 1) {
                    Issue.record("\(what): tile \(tile) has \(tile.count) rows, not about \(Double(n) / Double(count))")
                }
            }
        }
    }

    /// With two threads a 8,192-row window is shared out evenly (tiles of
    /// 384 would give one member 256 rows more than the other).
    @Test(arguments: [2, 3])
    func threadsGetEqualRows(_ threads: Int) throws {
        let model = try WaveNet(config: .tiny, seed: 1)
        model.threads = threads
        let tiles = model.tiles(time: 8192)
        expectCover(tiles, 0..<8192, "\(threads) threads")
        #expect(tiles.count % threads == 0)
        let shares = (0..<threads).map { m in stride(from: m, to: tiles.count, by: threads).reduce(0) { $0 + tiles[$1].count } }
        #expect(shares.max()! - shares.min()! <= 4 * tiles.count / threads, "members' rows \(shares)")
        model.threads = 1
        #expect(model.tiles(time: 8192).dropLast().allSatisfy { $0.count == model.tileRows }, "one thread keeps tiles of tileRows")
    }
}
