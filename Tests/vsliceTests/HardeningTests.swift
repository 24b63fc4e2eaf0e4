import Foundation
import Testing

/// Bad media made at test time from the fixtures (see Fixtures/README.md for the committed ones).
enum BadMedia {
    /// Overwrites 3000 bytes in the middle of the media data with fixed pseudo-random bytes.
    static func corruptMiddle(_ src: String, _ dst: String) throws {
        var d = try Data(contentsOf: URL(fileURLWithPath: src))
        let mdat = d.range(of: Data("mdat".utf8))!.lowerBound
        var x: UInt32 = 7
        let start = mdat + (d.count - mdat) / 2
        for i in start..<min(d.count, start + 3000) {
            x = x &* 1_103_515_245 &+ 12345
            d[i] = UInt8(truncatingIfNeeded: x >> 16)
        }
        try d.write(to: URL(fileURLWithPath: dst))
    }

    /// An MP4 whose video sample entry names a codec nobody knows ('zzzz' for 'avc1').
    static func unknownCodec(_ src: String, _ dst: String) throws {
        var d = try Data(contentsOf: URL(fileURLWithPath: src))
        while let r = d.range(of: Data("avc1".utf8)) { d.replaceSubrange(r, with: Data("zzzz".utf8)) }
        try d.write(to: URL(fileURLWithPath: dst))
    }

    static func ffmpeg(_ args: [String]) throws {
        let r = try Proc.run("ffmpeg", ["-nostdin", "-v", "error", "-y"] + args)
        guard r.status == 0 else { throw OracleError("ffmpeg \(args): \(r.stderr)") }
    }

    /// 17000×8: wider than the 16384 limit.
    static func hugeDimensions(_ dst: String) throws {
        try ffmpeg(["-f", "lavfi", "-i", "color=c=gray:size=17000x8:rate=5:duration=1", "-c:v", "ffv1", "-pix_fmt", "gray", dst])
    }

    /// One video and 70 audio streams: more than the limit of 64.
    static func manyStreams(_ dst: String) throws {
        var args = ["-f", "lavfi", "-i", "color=size=64x64:rate=5:duration=1", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                    "-map", "0:v"]
        for _ in 0..<70 { args += ["-map", "1:a"] }
        try ffmpeg(args + ["-t", "1", "-c:v", "ffv1", "-c:a", "pcm_s16le", dst])
    }
}

/// Runs vslice as an unprivileged user when the tests run as root (root reads and writes anything).
func asUnprivileged(_ args: [String], home: String) throws -> Run {
    if geteuid() == 0 {
        return try Proc.run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "env", "VSLICE_HOME=\(home)",
                                        Paths.vslice] + args, timeout: 120)
    }
    return try vslice(args, timeout: 120, environment: ["VSLICE_HOME": home])
}

@Suite("bad input, batch, disk full")
struct HardeningTests {
    struct Case {
        var name: String
        var input: String
        var output: String
        var code: Int32
        var message: String
        var unprivileged = false
        var extra: [String] = []
        var namesFile = true
    }

    @Test("every kind of bad input: documented exit code, one line naming the file, no output, no temp file")
    func badInputTable() throws {
        let dir = try Paths.scratch("badtable")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputs = dir.appendingPathComponent("in").path
        let outs = dir.appendingPathComponent("out").path
        let home = dir.appendingPathComponent("home").path
        // A job store of its own for the runs as an unprivileged user.
        let nobodyHome = dir.appendingPathComponent("home-unprivileged").path
        for d in [inputs, outs, home, nobodyHome] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        chmod(dir.path, 0o755); chmod(nobodyHome, 0o777); chmod(outs, 0o777)
        func input(_ name: String) -> String { (inputs as NSString).appendingPathComponent(name) }
        let out = (outs as NSString).appendingPathComponent("out.mp4")
        let good = Paths.fixture("h264_aac.mp4")

        try BadMedia.corruptMiddle(good, input("corrupt.mp4"))
        try BadMedia.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=8", "-c:v", "libx264", "-preset",
                             "ultrafast", "-g", "25", input("vonly.mp4")])
        try BadMedia.corruptMiddle(input("vonly.mp4"), input("vcorrupt.mp4"))
        try BadMedia.unknownCodec(good, input("unknown.mp4"))
        try BadMedia.hugeDimensions(input("huge.mkv"))
        try BadMedia.manyStreams(input("many.mkv"))
        try FileManager.default.copyItem(atPath: good, toPath: input("noperm.mp4"))
        chmod(input("noperm.mp4"), 0o000)
        mkfifo(input("fifo.mp4"), 0o644)
        try FileManager.default.createDirectory(atPath: input("folder.mp4"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: good, toPath: input("same.mp4"))
        let readOnly = dir.appendingPathComponent("ro").path
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        chmod(readOnly, 0o555)

        let cases: [Case] = [
            Case(name: "missing", input: input("missing.mp4"), output: out, code: 3, message: "no such file"),
            Case(name: "no permission", input: input("noperm.mp4"), output: out, code: 3, message: "permission denied", unprivileged: true),
            Case(name: "zero bytes", input: Paths.fixture("bad_empty.mp4"), output: out, code: 3, message: "empty"),
            Case(name: "truncated MP4", input: Paths.fixture("bad_truncated.mp4"), output: out, code: 3, message: "invalid data"),
            Case(name: "random bytes", input: Paths.fixture("bad_random.mp4"), output: out, code: 3, message: "not a media file"),
            Case(name: "audio only", input: Paths.fixture("bad_audio_only.m4a"), output: out, code: 3, message: "no video stream"),
            Case(name: "codec this build cannot decode", input: input("unknown.mp4"), output: out, code: 3, message: "cannot decode"),
            Case(name: "absurd dimensions", input: input("huge.mkv"), output: out, code: 3, message: "17000x8"),
            Case(name: "absurd stream count", input: input("many.mkv"), output: out, code: 3, message: "more than the limit"),
            Case(name: "corrupt packets mid-stream (audio and video)", input: input("corrupt.mp4"), output: out, code: 3, message: "nvalid data"),
            Case(name: "corrupt video mid-stream", input: input("vcorrupt.mp4"), output: out, code: 3, message: "corrupt data in video stream 0 near"),
            Case(name: "a FIFO", input: input("fifo.mp4"), output: out, code: 3, message: "not a regular file"),
            Case(name: "a folder", input: input("folder.mp4"), output: out, code: 3, message: "is a directory"),
            Case(name: "output folder missing", input: good, output: outs + "/nodir/x.mp4", code: 2, message: "does not exist"),
            Case(name: "output folder not writable", input: good, output: readOnly + "/x.mp4", code: 2, message: "not writable", unprivileged: true),
            Case(name: "output = input", input: input("same.mp4"), output: input("same.mp4"), code: 2, message: "is the input"),
            Case(name: "concat: protocol name", input: "concat:\(good)|\(good)", output: out, code: 3, message: "no such file"),
            Case(name: "http URL", input: "http://127.0.0.1:9/x.mp4", output: out, code: 3, message: "no such file"),
            Case(name: "name starting with -", input: "-x.mp4", output: out, code: 3, message: "no such file"),
            Case(name: "unknown output container", input: good, output: outs + "/x.avi", code: 2, message: "extension"),
            Case(name: "--vf that does not parse", input: good, output: out, code: 2, message: "not a valid filter graph",
                 extra: ["--vf", "nosuchfilter=3"], namesFile: false),
        ]
        for c in cases {
            // `--` so that a name starting with '-' is an argument, as a script would pass it.
            let args = ["transcode", "-o", c.output, "-q", "--min-split-seconds", "0", "--segment-seconds", "1"] + c.extra + ["--", c.input]
            let run = c.unprivileged ? try asUnprivileged(args, home: nobodyHome) : try vslice(args, timeout: 120, environment: ["VSLICE_HOME": home])
            #expect(run.status == c.code, "\(c.name): \(run.status) \(run.stderr)")
            let lines = run.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(c.name): \(run.stderr)")
            #expect(run.stderr.localizedCaseInsensitiveContains(c.message), "\(c.name): \(run.stderr)")
            let shown = c.code == 3 ? c.input : c.output
            #expect(!c.namesFile || run.stderr.contains(shown) || run.stderr.contains((shown as NSString).lastPathComponent), "\(c.name) names no file: \(run.stderr)")
            let left = try FileManager.default.contentsOfDirectory(atPath: outs)
            #expect(left.isEmpty, "\(c.name) left \(left)")
            let strays = try FileManager.default.contentsOfDirectory(atPath: inputs).filter { $0.hasPrefix(".") }
            #expect(strays.isEmpty, "\(c.name) left \(strays)")
        }
        // The copy used as both input and output is untouched.
        #expect(try Data(contentsOf: URL(fileURLWithPath: input("same.mp4"))) == Data(contentsOf: URL(fileURLWithPath: good)))
    }

    @Test("batch --json interrupted by Ctrl-C: a final batch_done (interrupted, the folders), exit 130; the same command finishes it")
    func batchInterrupted() throws {
        let dir = try Paths.scratch("batchint")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("in").path, out = dir.appendingPathComponent("out").path
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        for name in ["a", "b"] { try makeClip(src + "/\(name).mp4", size: "640x360", seconds: 8) }
        let home = dir.appendingPathComponent("home").path
        let args = ["batch", src, "-o", out, "--json", "--jobs", "1"] + quickArgs.filter { $0 != "-q" }
        let bg = try Background(args, environment: ["VSLICE_HOME": home])
        #expect(bg.waitUntil { ((try? String(contentsOf: bg.outURL, encoding: .utf8)) ?? "").contains("segment_done") })
        bg.signal(SIGINT)
        let r = bg.finish()
        #expect(r.status == 130, "\(r.stderr)")
        let done = try lastEvent(r.stdout, "batch_done")
        #expect(done["interrupted"] as? Bool == true && done["input"] as? String == src && done["output"] as? String == out, "\(done)")
        let again = try vslice(args, environment: ["VSLICE_HOME": home])
        #expect(again.status == 0, "\(again.stderr)")
        let finished = try lastEvent(again.stdout, "batch_done")
        #expect(finished["interrupted"] as? Bool == false && finished["done"] as? Int == 2, "\(finished)")
    }

    @Test("an output folder whose permission bits allow writing but which refuses it (sysfs, even to root): exit 2 before any work, no task recorded")
    func outputFolderRefusesWrites() throws {
        try #require(FileManager.default.fileExists(atPath: "/sys/kernel") && mkdir("/sys/vslice-probe", 0o700) != 0,
                     "no sysfs at /sys on this machine")
        let dir = try Paths.scratch("sysout")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("store.db").path
        let r = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", "/sys/vslice-out.mp4", "--db", db, "-q"])
        #expect(r.status == 2 && r.stderr.contains("'/sys' is not writable"), "\(r.status) \(r.stderr)")
        let status = try vslice(["status", "--db", db, "--json"])
        #expect(status.status == 0 && !status.stdout.contains("\"id\""), "\(status.stdout)")
    }

    @Test("--db in a folder that does not exist: exit 2 naming it, the folder not made (a typo would start an empty store)")
    func dbInMissingFolder() throws {
        let dir = try Paths.scratch("dbtypo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("no/such").path
        for args in [["transcode", Paths.fixture("h264_aac.mp4"), "-o", dir.appendingPathComponent("o.mp4").path], ["status"]] {
            let r = try vslice(args + ["--db", missing + "/store.db"])
            #expect(r.status == 2 && r.stderr.contains("'\(missing)' does not exist"), "\(args[0]): \(r.status) \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("no").path))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o.mp4").path))
    }

    @Test("--json: a failure before any task is one error event on stdout (exit code and message); a task's failure is task_failed alone")
    func jsonErrors() throws {
        let dir = try Paths.scratch("jsonerr")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("o.mp4").path
        for args in [["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--json", "--jobs", "0"],
                     ["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--json", "--crf", "soft"],
                     ["batch", dir.path, "-o", dir.path, "--json"],
                     ["status", "--json", "--db", dir.path + "/no/store.db"]] {
            let r = try vslice(args)
            let events = try ndjson(r.stdout)
            #expect(r.status == 2 && events.count == 1 && events[0]["event"] as? String == "error"
                    && events[0]["exit_code"] as? Int == 2 && (events[0]["error"] as? String).map { !$0.isEmpty } == true,
                    "\(args): \(r.status) \(r.stdout)")
        }
        let missing = try vslice(["transcode", dir.path + "/none.mp4", "-o", out, "--json"])
        let names = try ndjson(missing.stdout).compactMap { $0["event"] as? String }
        #expect(missing.status == 3 && names == ["task_failed"], "\(missing.stdout)")
    }

    @Test("bytes overwritten mid-file: exit 3, one line naming the stream and the time of the damage, no output")
    func corruptNamesPlace() throws {
        let dir = try Paths.scratch("midcorrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clip = dir.appendingPathComponent("clip.mp4").path, bad = dir.appendingPathComponent("in-mid.mp4").path
        let out = dir.appendingPathComponent("out.mp4").path
        try makeClip(clip, seconds: 6)
        try BadMedia.corruptMiddle(clip, bad)
        let run = try vslice(["transcode", bad, "-o", out, "-q"], timeout: 120)
        #expect(run.status == 3, "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1 && run.stderr.contains(bad), "\(run.stderr)")
        #expect(!run.stderr.contains("Error number"), "\(run.stderr)")
        // The damage is in the middle of a 6 s file: the time named is well inside it.
        let place = try #require(run.stderr.firstMatch(of: /(video|audio) stream (\d+) near (\d+\.\d{3}) s/), "\(run.stderr)")
        let time = try #require(Double(place.output.3))
        #expect(time > 1 && time < 5, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("a file whose name looks like a protocol is read as a plain file")
    func protocolLikeName() throws {
        let dir = try Paths.scratch("proto")
        defer { try? FileManager.default.removeItem(at: dir) }
        let weird = dir.appendingPathComponent("concat:a.mp4|b.mp4").path
        try FileManager.default.copyItem(atPath: Paths.fixture("h264_aac.mp4"), toPath: weird)
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", weird, "-o", out] + quickArgs)
        #expect(run.status == 0, "\(run.stderr)")
        try expectOracle(source: weird, output: out)
    }

    @Test("batch: good files in several containers and a subfolder, every bad kind; summary, NDJSON, exit 6; re-run skips")
    func batch() throws {
        let dir = try Paths.scratch("batch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src").path
        let out = dir.appendingPathComponent("out").path
        let home = dir.appendingPathComponent("home").path
        try FileManager.default.createDirectory(atPath: src + "/sub", withIntermediateDirectories: true)
        let good = ["h264_aac.mp4": "a.mp4", "surround51.mkv": "b.mkv", "mono44k.mov": "sub/c.mov", "offset_start.ts": "sub/d.ts"]
        for (fixture, name) in good {
            try FileManager.default.copyItem(atPath: Paths.fixture(fixture), toPath: src + "/" + name)
        }
        for bad in badFixtures { try FileManager.default.copyItem(atPath: Paths.fixture(bad), toPath: src + "/" + bad) }
        try BadMedia.corruptMiddle(Paths.fixture("h264_aac.mp4"), src + "/sub/corrupt.mp4")
        try BadMedia.unknownCodec(Paths.fixture("h264_aac.mp4"), src + "/unknown.mp4")
        try Data("notes".utf8).write(to: URL(fileURLWithPath: src + "/.hidden.mp4"))
        // The audio-only .m4a is not a video: skipped (listed), not failed. Every other bad one is named like a video.
        let bads = badFixtures.count + 2 - 1

        let args = ["batch", src, "-o", out, "--recursive", "--json"] + quickArgs.filter { $0 != "-q" }
        let first = try vslice(args, environment: ["VSLICE_HOME": home])
        #expect(first.status == 6, "\(first.stderr)")
        let events = try ndjson(first.stdout)
        let summary = try lastEvent(first.stdout, "batch_done")
        #expect(summary["inputs"] as? Int == good.count + bads + 1)
        #expect(summary["done"] as? Int == good.count)
        #expect(summary["failed"] as? Int == bads)
        #expect(summary["skipped"] as? Int == 1)
        #expect((summary["skipped_inputs"] as? [String: String])?["bad_audio_only.m4a"] == "no video stream")
        #expect((summary["failures"] as? [String: String])?.keys.sorted()
                == (badFixtures.filter { !$0.hasSuffix(".m4a") } + ["sub/corrupt.mp4", "unknown.mp4"]).sorted())
        let failed = events.filter { $0["event"] as? String == "task_failed" }
        #expect(failed.count == bads)
        #expect(failed.allSatisfy { $0["exit_code"] as? Int == 3 }, "\(failed)")
        let doneEvents = events.filter { $0["event"] as? String == "task_done" }
        #expect(doneEvents.count == good.count)
        #expect(doneEvents.allSatisfy { (($0["verify"] as? [String: Any])?["ok"] as? Bool) == true })
        for (fixture, name) in good {
            let o = out + "/" + (name as NSString).deletingPathExtension + ".mp4"
            try expectOracle(source: Paths.fixture(fixture), output: o)
        }
        // Nothing but the outputs in OUTDIR: no work folder, no part file, nothing for the bad inputs.
        let all = (FileManager.default.enumerator(atPath: out)?.allObjects as? [String] ?? []).sorted()
        #expect(all == ["a.mp4", "b.mp4", "sub", "sub/c.mp4", "sub/d.mp4"], "\(all)")

        let second = try vslice(args, environment: ["VSLICE_HOME": home])
        #expect(second.status == 6)
        let again = try lastEvent(second.stdout, "batch_done")
        #expect(again["skipped"] as? Int == good.count + 1)
        #expect(again["done"] as? Int == 0)
        #expect(try ndjson(second.stdout).filter { $0["event"] as? String == "input_skipped" }.count == good.count + 1)

        // Only the good ones, by pattern: exit 0.
        let mp4 = try vslice(["batch", src, "-o", out, "--pattern", "[ab].m*", "-q"] + quickArgs, environment: ["VSLICE_HOME": home])
        #expect(mp4.status == 0, "\(mp4.stderr)")

        // OUTDIR the input folder itself (by another spelling too): refused before any work, nothing written.
        let before = try FileManager.default.contentsOfDirectory(atPath: src).sorted()
        for same in [src, src + "/."] {
            let r = try vslice(["batch", same, "-o", src, "--container", "mkv", "-q"] + quickArgs, environment: ["VSLICE_HOME": home])
            #expect(r.status == 2 && r.stderr.contains("the output folder is the input folder"), "\(r.status) \(r.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: src).sorted() == before)
    }

    @Test("disk full while writing segments: clear error, exit 1, resumable once space is freed; the segments done are not encoded again",
          .enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func diskFull() throws {
        let dir = try Paths.scratch("full")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("clip.mp4").path
        try makeClip(src, size: "640x360", seconds: 10)
        let small = dir.appendingPathComponent("small").path
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        let mount = try Proc.run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small])
        try #require(mount.status == 0, "this machine cannot mount a small tmpfs here: \(mount.stderr)")
        defer { _ = try? Proc.run("umount", [small]) }
        let out = small + "/out.mp4"
        let args = ["transcode", src, "-o", out, "--crf", "18", "--jobs", "1", "--max-attempts", "1"] + quickArgs
        let home = dir.appendingPathComponent("home").path
        let full = try vslice(args, environment: ["VSLICE_HOME": home])
        #expect(full.status == 1, "\(full.stderr)")
        #expect(full.stderr.contains("No space left on device"))
        #expect(full.stderr.contains("disk is full"))
        #expect(!FileManager.default.fileExists(atPath: out))
        let doneBefore = try Proc.run("sqlite3", ["-readonly", home + "/vslice.db", "SELECT count(*) FROM segment WHERE status='done'"])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Int(doneBefore) ?? 0 > 0)
        let work = try #require(try Witness.workFolder(of: out))
        let sealed = try Witness.sealed(in: work)
        #expect(sealed.count == Int(doneBefore), "\(sealed.keys.sorted()), ledger \(doneBefore)")

        #expect(try Proc.run("mount", ["-o", "remount,size=64m", small]).status == 0)
        let resumed = try vslice(args + ["--keep-temp"], environment: ["VSLICE_HOME": home])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try expectOracle(source: src, output: out)
        let encodes = try Proc.run("sqlite3", ["-readonly", home + "/vslice.db",
                                               "SELECT count(*) FROM trace WHERE segment_id IS NOT NULL AND status='done'"])
        #expect(encodes.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "10")
        // The segments sealed before the disk filled are the files merged, not written again.
        #expect(Witness.changed(sealed, try Witness.sealed(in: work)).isEmpty)
        try FileManager.default.removeItem(atPath: work)
        #expect(try FileManager.default.contentsOfDirectory(atPath: small) == ["out.mp4"])

        // Full while writing the output (the work folder elsewhere): no part file left, the segments kept.
        try FileManager.default.removeItem(atPath: out)
        #expect(try Proc.run("mount", ["-o", "remount,size=1m", small]).status == 0)
        let workRoot = dir.appendingPathComponent("work").path
        try FileManager.default.createDirectory(atPath: workRoot, withIntermediateDirectories: true)
        let args2 = args + ["--work-dir", workRoot, "--fresh"]
        let full2 = try vslice(args2, environment: ["VSLICE_HOME": home])
        #expect(full2.status == 1, "\(full2.stderr)")
        #expect(full2.stderr.contains("disk is full"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: small).isEmpty, "a partial merge was left")
        #expect(try Proc.run("mount", ["-o", "remount,size=64m", small]).status == 0)
        // Every segment was sealed before the merge filled the disk.
        let kept = try Witness.sealed(in: try #require(try Witness.workFolder(of: out, root: workRoot)))
        #expect(kept.count == 10, "\(kept.keys.sorted())")
        let resumed2 = try vslice(args + ["--work-dir", workRoot, "--keep-temp"], environment: ["VSLICE_HOME": home])
        #expect(resumed2.status == 0, "\(resumed2.stderr)")
        #expect(Witness.changed(kept, try Witness.sealed(in: try #require(try Witness.workFolder(of: out, root: workRoot)))).isEmpty)
        try expectOracle(source: src, output: out)
        let task = try Proc.run("sqlite3", ["-readonly", home + "/vslice.db", "SELECT id FROM task ORDER BY created_at DESC LIMIT 1"])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let redone = try Proc.run("sqlite3", ["-readonly", home + "/vslice.db",
                                              "SELECT count(*) FROM trace WHERE segment_id LIKE '\(task)%' AND status='done'"])
        #expect(redone.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "10", "segments were encoded again")
    }
}
