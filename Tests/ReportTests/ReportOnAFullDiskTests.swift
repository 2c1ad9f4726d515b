import PBTFileSupport
import Foundation
import ReportFixtures
@testable import PBTReport
import TestSupport
import Testing

/// Issue 15, item 6: a report that cannot be written completely leaves the
/// previous one intact (before: a full disk during `report render` left
/// report.html without its figures).
@Suite struct ReportOnAFullDiskTests {
    static func contents(_ directory: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            files[name] = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path)
        }
        return files
    }

    /// A disk with room for one report but not for a second beside it.
    @Test(.enabled(if: SmallDisk.available, "mounting a tmpfs needs root"))
    func aFullDiskLeavesThePreviousReport() throws {
        let scratch = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        // Measure one report, then make a disk 1.5 times its size.
        try ExperimentReport.write(.demo(seeds: 2), to: scratch)
        let size = try Self.contents(scratch).values.reduce(0) { $0 + ($1.count + 4095) / 4096 * 4096 }
        let disk = try SmallDisk(at: scratch.appendingPathComponent("disk"), bytes: size * 3 / 2)
        defer { disk.unmount() }
        try ExperimentReport.write(.demo(seeds: 2), to: disk.url)
        let before = try Self.contents(disk.url)
        #expect {
            try ExperimentReport.write(.demo(seeds: 3), to: disk.url)
        } throws: { error in
            "\(error)".contains("the previous report, if any, is unchanged")
        }
        #expect(try Self.contents(disk.url) == before, "every file of the previous report is as it was, and no temporary is left")
    }

    /// The same all-or-nothing write without a real disk: a file that cannot
    /// be created fails the first phase, and the file staged before it is
    /// neither renamed into place nor left behind.
    @Test func aFailedWriteChangesNothing() throws {
        let directory = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let a = directory.appendingPathComponent("a.txt").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: a))
        let missingFolder = directory.appendingPathComponent("no/such/folder/b.txt").path
        #expect(throws: AtomicFileError.self) {
            try AtomicFile.writeAll([(path: a, data: Data("new".utf8)), (path: missingFolder, data: Data("x".utf8))])
        }
        #expect(FileManager.default.contents(atPath: a) == Data("old".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["a.txt"], "no temporary left")
    }
}
