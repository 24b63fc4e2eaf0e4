import Foundation
import Testing

/// A disk that fills mid-run (issue 28, item 6): the job store and the output on one full tmpfs, the job store's
/// disk alone full, the output's alone full. Each run must say "disk is full" and exit 1 — never "another vslice
/// process took the task over" (exit 5), which a failed heartbeat write used to be read as —, publish nothing,
/// and resume once space is back without encoding again a segment that was finished before the disk filled.
///
/// The disk is filled at a known point: a `--process` gate lets the first segment through and holds the others
/// until the test has seen that segment's `segment_done` and filled the disk with a ballast file.
/// Needs root (mount); skipped otherwise.
@Suite("a full disk told apart from a lost lease", .serialized, .enabled(if: SmallDisk.available, "needs root and tmpfs mounts"))
struct FullDiskTests {
    enum Where { case sameDisk, storeAlone, outputAlone }

    @Test("job store and output on one tmpfs that fills: exit 1 'disk is full', nothing published, resumed, nothing redone")
    func storeAndOutputFull() throws { try fillAndResume(.sameDisk) }

    @Test("the job store's disk alone fills: exit 1 'disk is full' (not a lost lease), nothing published, resumed, nothing redone")
    func storeAloneFull() throws { try fillAndResume(.storeAlone) }

    @Test("the output's disk alone fills: exit 1 'disk is full', nothing published, resumed, nothing redone")
    func outputAloneFull() throws { try fillAndResume(.outputAlone) }

    func fillAndResume(_ place: Where) throws {
        let dir = try Paths.scratch("fulldisk")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("clip.mp4").path
        try makeClip(src, size: "320x180", seconds: 6)
        let disk = try SmallDisk(at: dir.appendingPathComponent("small").path, size: "16m")
        defer { disk.unmount() }
        let elsewhere = dir.appendingPathComponent("elsewhere").path
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        let db = (place == .outputAlone ? elsewhere : disk.path) + "/vslice.db"
        let out = (place == .storeAlone ? elsewhere : disk.path) + "/out.mp4"
        let gate = try Gate(in: dir.path)

        // --max-attempts 4: a failing segment is retried for 0.5 + 1 + 2 s on the full disk, so the heartbeat
        // (every 2 s) writes at least once while it is full.
        let args = ["transcode", src, "-o", out, "--db", db, "--crf", "18", "--min-split-seconds", "0", "--segment-seconds", "1",
                    "--preset", "veryfast", "--jobs", "2", "--max-attempts", "4", "--keep-temp", "--json",
                    "--process", "sh \(gate.script)"]
        let bg = try Background(args)
        defer { if bg.process.isRunning { bg.signal(SIGKILL); bg.process.waitUntilExit() } }
        let sealed = bg.waitUntil(timeout: 60) { ((try? String(contentsOf: bg.outURL, encoding: .utf8)) ?? "").contains("\"segment_done\"") }
        try #require(sealed, "no segment was finished before the disk was to fill")
        let ballast = try disk.fill()
        gate.open()
        let full = bg.finish(timeout: 120)

        // The error is the last line on stderr (retry warnings come before it).
        let error = full.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(full.status == 1, "exit \(full.status): \(full.stderr)")
        #expect(error.hasPrefix("vslice: ") && error.contains("disk is full"), "\(full.stderr)")
        #expect(error.contains("run the same command to resume"), "\(error)")
        #expect(!full.stderr.contains("took the task over"), "\(full.stderr)")
        let events = try ndjson(full.stdout)
        let task = try #require(events.first { $0["event"] as? String == "task_started" }?["task"] as? String)
        let failed = try lastEvent(full.stdout, "task_failed")
        #expect(failed["exit_code"] as? Int == 1, "\(failed)")
        // Nothing published: no output, no merged part file beside it.
        let outDir = (out as NSString).deletingLastPathComponent, name = (out as NSString).lastPathComponent
        let work = outDir + "/.\(name).vslice-\(task.prefix(8))"
        #expect(!FileManager.default.fileExists(atPath: out), "published on a full disk")
        #expect(!FileManager.default.fileExists(atPath: work + ".part"), "a merged part file was left")

        // The segments finished before the failure, as the files themselves are: the witness of "not redone".
        let finished = Set(events.filter { $0["event"] as? String == "segment_done" }.compactMap { $0["segment"] as? Int })
        try #require(!finished.isEmpty)
        let before = try Dictionary(uniqueKeysWithValues: finished.map { ($0, try FileStamp(work + String(format: "/seg-%05d.vseg", $0))) })

        try disk.remove(ballast)
        let resumed = try vslice(args)
        #expect(resumed.status == 0, "exit \(resumed.status): \(resumed.stderr)")
        #expect(try oracleProblems(source: src, output: out).isEmpty)
        let started = try ndjson(resumed.stdout).filter { $0["event"] as? String == "segment_started" }.compactMap { $0["segment"] as? Int }
        #expect(finished.isDisjoint(with: started), "encoded again: \(finished.intersection(started).sorted())")
        for (segment, stamp) in before {
            #expect(try FileStamp(work + String(format: "/seg-%05d.vseg", segment)) == stamp, "segment \(segment) was written again")
        }
        #expect(try lastEvent(resumed.stdout, "task_started")["resumed"] as? Bool == true)
    }
}

/// A file's inode, size and modification time (to the nanosecond): the same after a resume means not rewritten.
struct FileStamp: Equatable, CustomStringConvertible {
    var inode: UInt64, size: Int64, mtimeSeconds: Int, mtimeNanos: Int

    init(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw OracleError("cannot stat \(path): \(String(cString: strerror(errno)))") }
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        mtimeSeconds = st.st_mtim.tv_sec
        mtimeNanos = st.st_mtim.tv_nsec
    }

    var description: String { "inode \(inode), \(size) bytes, mtime \(mtimeSeconds).\(mtimeNanos)" }
}

/// The per-segment program of these tests: `cat` (Y4M in, Y4M out), except that only the first segment to start
/// goes through at once; the others wait until the test opens the gate. The check before any work passes.
struct Gate {
    let script: String
    let go: String

    init(in dir: String) throws {
        script = dir + "/gate.sh"
        go = dir + "/gate-open"
        try """
            #!/bin/sh
            if [ "$VSLICE_TASK" != check ] && ! mkdir '\(dir)/gate-first' 2>/dev/null; then
                while [ ! -e '\(go)' ]; do sleep 0.02; done
            fi
            exec cat
            """.write(toFile: script, atomically: true, encoding: .utf8)
    }

    func open() { FileManager.default.createFile(atPath: go, contents: nil) }
}

/// A small tmpfs mounted for one test, filled on demand with a ballast file; unmounted however the test ends.
final class SmallDisk {
    let path: String
    private var mounted = false

    /// Root, and this machine mounts a tmpfs.
    static let available: Bool = {
        guard geteuid() == 0 else { return false }
        guard let probe = try? Paths.scratch("mount-probe") else { return false }
        defer { try? FileManager.default.removeItem(at: probe) }
        guard (try? Proc.run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe.path]))?.status == 0 else { return false }
        return (try? Proc.run("umount", [probe.path]))?.status == 0
    }()

    init(at path: String, size: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let r = try Proc.run("mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
        guard r.status == 0 else { throw OracleError("cannot mount a tmpfs at \(path): \(r.stderr)") }
        mounted = true
    }

    /// Writes zeros into a new file until the disk refuses any more (ENOSPC): the disk is then full to the block.
    func fill() throws -> String {
        let ballast = path + "/ballast"
        let fd = open(ballast, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OracleError("cannot create \(ballast): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var size = chunk.count
        while size >= 512 {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, size) }
            if n < 0 {
                guard errno == ENOSPC else { throw OracleError("writing \(ballast): \(String(cString: strerror(errno)))") }
                size /= 2
            } else if n < size {
                size /= 2
            }
        }
        var fs = statvfs()
        guard statvfs(path, &fs) == 0, fs.f_bavail == 0 else { throw OracleError("\(path) is not full: \(fs.f_bavail) blocks free") }
        return ballast
    }

    func remove(_ ballast: String) throws { try FileManager.default.removeItem(atPath: ballast) }

    /// Unmounts (lazily if something still holds a file there): no mount outlives its test.
    func unmount() {
        guard mounted else { return }
        if (try? Proc.run("umount", [path]))?.status != 0 { _ = try? Proc.run("umount", ["-l", path]) }
        mounted = false
    }

    deinit { unmount() }
}
