import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// A helper program of the context steps (`--analyze`, `--reduce`): its command, the folder it runs in, its
/// environment, where its stderr is appended.
package struct HelperProgram {
    package var command: String
    package var directory: String?
    package var environment: [String: String]
    package var logPath: String?

    package init(command: String, directory: String?, environment: [String: String], logPath: String?) {
        self.command = command
        self.directory = directory
        self.environment = environment
        self.logPath = logPath
    }
}

/// What a helper program wrote on stdout, sealed: its file's size and Adler-32, and the program's CPU time.
package struct ArtifactResult: Sendable {
    package var frames: Int
    package var bytes: Int64
    package var checksum: UInt32
    package var cpuSeconds: Double
}

/// One analysis element (`--analyze CMD`): segment `segment`'s frames, buffer frames included, decoded from the
/// source and written to the program's stdin as one Y4M stream (as a `--process` program gets them); what it
/// writes on stdout is the element's artifact, written to `outputPath` and fsynced.
package enum Analysis {
    package static func run(_ program: HelperProgram, source: String, index: VideoIndex, segment: SegmentPlan, threads: Int,
                            watch: WorkWatch, expect: FileIdentity?, outputPath: String) throws(VSliceError) -> ArtifactResult {
        let src = try SegmentSource(path: source, index: index, segment: segment, threads: threads, watch: watch, expect: expect,
                                    progress: { _ in })
        let g = src.geometry
        let pipeFormat = Y4MChroma.carrier(for: g.pixelFormat)
        let converter = PixelConverter.sameLayout(g.pixelFormat, pipeFormat) ? nil
            : try PixelConverter(width: g.width, height: g.height, from: g.pixelFormat, fromFullRange: g.fullRange,
                                 to: pipeFormat, toFullRange: g.fullRange, space: g.colorSpace, path: source)
        let told = ExternalProcessor.environment(input: g, format: .y4m, pipeFormat: pipeFormat, fullRange: g.fullRange)
        let pipes = try HelperPipes(program, environment: program.environment.merging(told) { $1 }, outputPath: outputPath,
                                    watch: watch, operation: "run the analyzer (segment \(segment.index))")
        pipes.writer.queue(ExternalProcessor.header(input: g, pipeFormat: pipeFormat, fullRange: g.fullRange).line)
        var frames = 0
        try src.run { (frame) throws(VSliceError) in
            pipes.writer.queue("FRAME\n")
            if let converter {
                let converted = Frame()
                try converter.convert(frame, into: converted)
                try pipes.writer.queue(converted, format: pipeFormat)
            } else {
                try pipes.writer.queue(frame, format: pipeFormat)
            }
            frames += 1
            watch.madeProgress()
            try pipes.pump()
        }
        if frames != segment.processedCount {
            throw VSliceError(.processing, "analyze segment \(segment.index)", path: source,
                              reason: "decoded \(frames) of the segment's \(segment.processedCount) frames")
        }
        var result = try pipes.finish()
        result.frames = frames
        return result
    }
}

/// The reduce (`--reduce CMD`): the program run once with the artifacts' paths, in order, as its arguments; its
/// stdout is the global result, written to `outputPath` and fsynced.
package enum Reduction {
    package static func run(_ program: HelperProgram, arguments: [String], watch: WorkWatch, outputPath: String) throws(VSliceError) -> ArtifactResult {
        var p = program
        p.command = program.command + arguments.map { " " + shellQuoted($0) }.joined()
        let pipes = try HelperPipes(p, environment: p.environment, outputPath: outputPath, watch: watch, operation: "run the reducer")
        return try pipes.finish()
    }

    /// `word` as one /bin/sh word.
    package static func shellQuoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

/// A helper program's pipes, serviced by one poll loop: what `writer` holds to its stdin, its stdout to the
/// artifact file (summed as it goes), its stderr to its log.
private final class HelperPipes {
    let writer = PipeWriter()
    private let child: ChildProcess
    private let out: Int32
    private let outputPath: String
    private let watch: WorkWatch
    private let operation: String
    private var log: FileHandle?
    private var tail = StderrTail()
    private var bytes: Int64 = 0
    private var sum: UInt32 = 1
    private var brokenPipe = false

    init(_ program: HelperProgram, environment: [String: String], outputPath: String, watch: WorkWatch, operation: String) throws(VSliceError) {
        signal(SIGPIPE, SIG_IGN)
        self.outputPath = outputPath
        self.watch = watch
        self.operation = operation
        out = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard out >= 0 else { throw VSliceError(.processing, operation, path: outputPath, reason: String(cString: strerror(errno))) }
        if let logPath = program.logPath {
            if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
            log = FileHandle(forWritingAtPath: logPath)
            _ = try? log?.seekToEnd()
        }
        do throws(VSliceError) {
            child = try ChildProcess(command: program.command, directory: program.directory, environment: environment)
        } catch {
            close(out)
            throw error
        }
    }

    deinit {
        child.kill()
        if out >= 0 { close(out) }
        try? log?.close()
    }

    /// Services the pipes until what `writer` holds is written (the program reads as it writes).
    func pump() throws(VSliceError) {
        while !writer.isEmpty && child.stdin >= 0 { try poll(timeout: 100) }
        if brokenPipe {
            throw deterministic("the program ended before reading all its frames" + tail.said)
        }
    }

    /// Closes its stdin, reads its output to the end, waits for it to exit, and seals the artifact.
    func finish() throws(VSliceError) -> ArtifactResult {
        try pump()
        child.closeStdin()
        while child.stdout >= 0 || child.stderr >= 0 { try poll(timeout: 100) }
        while !child.hasExited {
            try watch.check(operation, path: outputPath)
            usleep(10_000)
        }
        let (how, cpu) = child.reap()
        _ = tail.flush()
        if !how.succeeded {
            throw VSliceError(.processing, operation, path: outputPath, reason: "the program failed (\(how))" + tail.said)
        }
        if fsync(out) != 0 { throw VSliceError(.processing, operation, path: outputPath, reason: String(cString: strerror(errno))) }
        return ArtifactResult(frames: 0, bytes: bytes, checksum: sum, cpuSeconds: cpu)
    }

    private func poll(timeout: Int32) throws(VSliceError) {
        try watch.check(operation, path: outputPath)
        var fds: [pollfd] = []
        if !writer.isEmpty && child.stdin >= 0 { fds.append(pollfd(fd: child.stdin, events: Int16(POLLOUT), revents: 0)) }
        if child.stdout >= 0 { fds.append(pollfd(fd: child.stdout, events: Int16(POLLIN), revents: 0)) }
        if child.stderr >= 0 { fds.append(pollfd(fd: child.stderr, events: Int16(POLLIN), revents: 0)) }
        guard !fds.isEmpty else { return }
        let n = Glibc.poll(&fds, nfds_t(fds.count), timeout)
        if n < 0 && errno != EINTR {
            throw VSliceError(.processing, operation, path: outputPath, reason: "poll: \(String(cString: strerror(errno)))")
        }
        for p in fds where p.revents != 0 {
            if p.fd == child.stdin {
                if case .broken = writer.write(to: child.stdin) { brokenPipe = true; child.closeStdin() }
            } else if p.fd == child.stdout {
                try readOutput()
            } else if p.fd == child.stderr {
                readStderr()
            }
        }
    }

    private func readOutput() throws(VSliceError) {
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        let n = buf.withUnsafeMutableBufferPointer { Glibc.read(child.stdout, $0.baseAddress!, $0.count) }
        if n > 0 {
            watch.madeProgress()
            try buf.withUnsafeBufferPointer { (b) throws(VSliceError) in
                var off = 0
                while off < n {
                    let w = Glibc.write(out, b.baseAddress! + off, n - off)
                    if w < 0 {
                        if errno == EINTR { continue }
                        throw VSliceError(.processing, operation, path: outputPath, reason: String(cString: strerror(errno)))
                    }
                    off += w
                }
                sum = Adler32.update(sum, b.baseAddress!, n)
            }
            bytes += Int64(n)
        } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
            child.closeStdout()
        }
    }

    private func readStderr() {
        var buf = [UInt8](repeating: 0, count: 16 << 10)
        let n = buf.withUnsafeMutableBufferPointer { Glibc.read(child.stderr, $0.baseAddress!, $0.count) }
        if n > 0 {
            let data = Data(buf[0..<n])
            log?.write(data)
            _ = tail.add(data)
        } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
            child.closeStderr()
        }
    }

    private func deterministic(_ why: String) -> VSliceError {
        var e = VSliceError(.processing, operation, path: outputPath, reason: why)
        e.deterministic = true
        return e
    }
}

/// The context frames (`--context-frames`): source frames decoded for a segment's processor, which gets them
/// ahead of its own frames.
package enum ContextFrames {
    package static func decode(_ spans: [FrameSpan], source: String, index: VideoIndex, threads: Int, watch: WorkWatch,
                               expect: FileIdentity?) throws(VSliceError) -> [Frame] {
        var frames: [Frame] = []
        for span in spans {
            let plan = SegmentPlan.checkRun(span.first, span.last, index: index)
            let src = try SegmentSource(path: source, index: index, segment: plan, threads: threads, watch: watch, expect: expect,
                                        progress: { _ in })
            try src.run { (frame) throws(VSliceError) in
                let held = Frame()
                try ffCheck(av_frame_ref(held.ptr, frame.ptr), "hold a context frame")
                frames.append(held)
            }
            if src.handedOn != span.count {
                throw VSliceError(.input, "decode the context frames", path: source,
                                  reason: "decoded \(src.handedOn) of frames \(span.first)-\(span.last)")
            }
        }
        return frames
    }
}
