import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// How one external processor runs (`--process`), for one segment or for the check before any work.
package struct ProcessorSpec {
    package var settings: ProcessorSettings
    /// What it runs for, in messages: "segment 3", "check".
    package var label: String
    /// What every segment's program must put out; nil while it is being learnt (the check).
    package var expected: ProcessorOutput?
    /// The program's whole environment.
    package var environment: [String: String]
    /// Where its stderr is appended (the segment's log in the work folder), if anywhere.
    package var logPath: String?
    /// Each line of its stderr as it comes (`-v` shows them).
    package var onStderrLine: (@Sendable (String) -> Void)? = nil
    /// Pixel formats the encoder takes (empty: any), and the one to prefer (the source's).
    package var encoderFormats: [AVPixelFormat] = []
    package var preferredFormat: AVPixelFormat = AV_PIX_FMT_NONE
    /// The frames it is to be given (a segment's, overlap buffers included; the check's), when known: nil when
    /// a `--vf` before it may change the count.
    package var inputFrames: Int? = nil
    /// `--process-persistent`: the slot's program the stream runs on (started if need be), and what its header
    /// says besides the frames' geometry (`XVSLICE_SEGMENT`, `XVSLICE_FRAMES`…, in this order).
    package var host: PersistentProcessor? = nil
    package var streamTags: [(String, String)] = []
    /// Frames written ahead of the segment's own (`--context-frames`); what the program puts out for them is
    /// dropped here, so the stages after it never see them.
    package var lead: [Frame] = []
}

extension ProcessorSpec {
    /// A kept-loaded stream's header tags: its segment, its first kept source frame, the frames it holds (buffer
    /// frames included) and its buffer frames before and after.
    package static func tags(segment: Int, firstFrame: Int, frames: Int, before: Int, after: Int) -> [(String, String)] {
        [("VSLICE_SEGMENT", String(segment)), ("VSLICE_FRAMES", String(frames)), ("VSLICE_FIRST_FRAME", String(firstFrame)),
         ("VSLICE_BUFFER_BEFORE", String(before)), ("VSLICE_BUFFER_AFTER", String(after))]
    }
}

/// An external program as a pipeline stage (`--process CMD`): `/bin/sh -c CMD` in a process group of its own,
/// the segment's frames written to its stdin (Y4M or raw RGB), its frames read from its stdout. Both pipes are
/// serviced by one `poll` loop on the segment's thread, so neither side can block the other, and at most a few
/// frames wait here (the stage refuses input while its output waits to be received). The program's output
/// frame j is timed at input position j·Q/P (rate P/Q): inside the input frame it falls in, in equal steps, on
/// a clock P times finer than the input's — VFR sources keep their rhythm, and k frames split each interval.
package final class ExternalProcessor: FrameProcessor {
    package let spec: ProcessorSpec
    private let input: FrameGeometry
    private let watch: WorkWatch
    private let path: String
    private let child: ChildProcess
    /// Input frames' conversion to the pipe's format (nil: they cross as they are).
    private let inConverter: PixelConverter?
    private let pipeInFormat: AVPixelFormat
    private let pipeInFullRange: Bool
    /// What the program puts out, and its conversion to what the encoder takes.
    package private(set) var learnt: ProcessorOutput?
    private var outConverter: PixelConverter?
    private var outFormat: AVPixelFormat = AV_PIX_FMT_NONE

    // The pipes.
    private let writer = PipeWriter()
    private let reader: PipeReader
    private var wroteHeader = false
    private var closing = false
    private var stderrTail = StderrTail()
    private var log: FileHandle?

    // Timing and counts.
    private var inputTimes: [Int64] = []
    private var endTime: Int64?
    private var parsed: [Frame] = []
    private var produced = 0
    private var delivered = 0
    /// Output frames dropped so far of those the lead frames make.
    private var leadDropped = 0
    private var ended: (ChildProcess.Termination, cpu: Double)?
    private var brokenPipe = false
    /// Frames waiting here at most before input is refused.
    private let cap: Int
    /// When the program was started (or, kept loaded, its stream begun), and when its first and last frames came.
    private var launchedAt = monotonicSeconds()
    private var firstOutputAt: Double?
    private var lastOutputAt: Double?

    /// CPU seconds the program used (known once it has ended).
    package var cpuSeconds: Double { persistentCPU ?? ended?.cpu ?? 0 }
    /// Kept loaded: the program this stream runs on, its group's CPU seconds when the stream began and what the
    /// stream used, and whether the stream came back whole (else the program is killed with this stage).
    private let host: PersistentProcessor?
    private var cpuAtStart = 0.0
    private var persistentCPU: Double?
    private var streamDone = false
    package var framesIn: Int { inputTimes.count }

    /// Starts the program for frames of `input` geometry.
    package init(_ spec: ProcessorSpec, input: FrameGeometry, watch: WorkWatch, path: String) throws(VSliceError) {
        Self.ignoreSIGPIPE
        self.spec = spec
        self.input = input
        self.watch = watch
        self.path = path
        learnt = spec.expected
        let rate = spec.expected?.rate ?? spec.settings.rate ?? Ratio(num: 1, den: 1)
        cap = Int(rate.num / max(1, rate.den)) * 2 + 8
        switch spec.settings.format {
        case .y4m:
            pipeInFormat = Y4MChroma.carrier(for: input.pixelFormat)
            pipeInFullRange = input.fullRange
        case .rgb24:
            pipeInFormat = AV_PIX_FMT_RGB24
            pipeInFullRange = true
        case .rgb48le:
            pipeInFormat = AV_PIX_FMT_RGB48LE
            pipeInFullRange = true
        }
        inConverter = PixelConverter.sameLayout(input.pixelFormat, pipeInFormat) ? nil
            : try PixelConverter(width: input.width, height: input.height, from: input.pixelFormat, fromFullRange: input.fullRange,
                                 to: pipeInFormat, toFullRange: pipeInFullRange, space: input.colorSpace, path: path)
        if let logPath = spec.logPath {
            if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
            log = FileHandle(forWritingAtPath: logPath)
            _ = try? log?.seekToEnd()
        }
        let told = Self.environment(input: input, format: spec.settings.format, pipeFormat: pipeInFormat, fullRange: pipeInFullRange)
        host = spec.host
        launchedAt = monotonicSeconds()
        if let host {
            reader = host.reader
            child = try host.lend(environment: spec.environment.merging(told) { $1 }).child
            cpuAtStart = host.groupCPUSeconds
        } else {
            reader = PipeReader(y4m: spec.settings.format == .y4m)
            child = try ChildProcess(command: spec.settings.command, directory: spec.settings.directory,
                                     environment: spec.environment.merging(told) { $1 })
        }
        if let expected = spec.expected {
            try prepareOutput(expected)
        } else if spec.settings.format != .y4m {
            try learnRaw()
        }
    }

    deinit {
        if let host {
            // A stream that did not come back whole leaves the program in no known state.
            if !streamDone { host.discard() }
        } else {
            child.kill()
        }
        try? log?.close()
    }

    /// "run the processor (segment 3)", for errors.
    package var operation: String { "run the processor (\(spec.label))" }

    private static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// What the program is told of the frames it reads: their size, rate, pixel format and colour.
    package static func environment(input: FrameGeometry, format: ProcessFormat, pipeFormat: AVPixelFormat,
                                    fullRange: Bool) -> [String: String] {
        let rate = header(input: input, pipeFormat: pipeFormat, fullRange: fullRange).rate
        func name(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "unknown" }
        return [
            "VSLICE_WIDTH": String(input.width), "VSLICE_HEIGHT": String(input.height),
            "VSLICE_FRAME_RATE": "\(rate.num)/\(rate.den)", "VSLICE_PIX_FMT": PixelConverter.name(pipeFormat),
            "VSLICE_FORMAT": format.rawValue,
            "VSLICE_COLOR_MATRIX": name(av_color_space_name(PixelConverter.matrix(input.colorSpace, height: input.height))),
            "VSLICE_COLOR_PRIMARIES": name(av_color_primaries_name(input.colorPrimaries)),
            "VSLICE_COLOR_TRANSFER": name(av_color_transfer_name(input.colorTransfer)),
            "VSLICE_COLOR_RANGE": fullRange ? "full" : "limited",
        ]
    }

    // MARK: FrameProcessor

    package var output: FrameGeometry {
        let out = learnt!
        let rate = out.rate
        var g = FrameGeometry(width: Int32(out.width), height: Int32(out.height), pixelFormat: outFormat,
                              sampleAspect: input.sampleAspect,
                              timeBase: AVRational(num: input.timeBase.num, den: input.timeBase.den * rate.num),
                              frameRate: input.frameRate.num > 0
                                  ? av_mul_q(input.frameRate, AVRational(num: rate.num, den: rate.den)) : input.frameRate)
        g.takeColors(of: input)
        // A yuvj source says full range by its format; its frames out say it by their tag.
        if input.colorRange == AVCOL_RANGE_UNSPECIFIED && input.fullRange { g.colorRange = AVCOL_RANGE_JPEG }
        return g
    }

    package func send(_ frame: Frame) throws(VSliceError) -> Bool {
        if !writer.isEmpty {
            try pump(blocking: true) { self.writer.isEmpty || self.mustReceive }
            if !writer.isEmpty { return false }
        }
        if mustReceive { return false }
        inputTimes.append(frame.pts)
        try queue(frame)
        try pump(blocking: true) { self.writer.isEmpty || self.mustReceive }
        return true
    }

    package func finish(end: Int64) throws(VSliceError) {
        endTime = end
        closing = true
        if host != nil {
            // Kept loaded, its input stays open: the header said how many frames the stream has.
            if let n = spec.inputFrames, n != inputTimes.count {
                throw VSliceError(.processing, operation, path: path,
                                  reason: "\(inputTimes.count) frames were decoded of the \(n) the stream's header announced")
            }
            return
        }
        if writer.isEmpty { child.closeStdin() }
    }

    package func receive(_ frame: Frame) throws(VSliceError) -> CodecResult {
        if !closing {
            try pump(blocking: false) { true }
        } else {
            try pump(blocking: true) { self.timeable || self.child.stdout < 0 || self.streamComplete }
            if parsed.isEmpty && streamComplete { try endStream(); return .endOfStream }
            if parsed.isEmpty && child.stdout < 0 { try concludeIfEnded(); return .endOfStream }
        }
        guard timeable else { return .again }
        let next = parsed.removeFirst()
        frame.unref()
        av_frame_move_ref(frame.ptr, next.ptr)
        frame.pts = try time(of: delivered)
        delivered += 1
        return .ok
    }

    /// Kept loaded: every frame of the stream was sent and every frame it owes came back.
    private var streamComplete: Bool {
        host != nil && closing && writer.isEmpty && produced == expectedFrames(for: inputTimes.count) && reader.partialBytes == 0
    }

    /// Kept loaded, the stream came back whole: nothing more may follow before the next header, and the program
    /// stays for the next stream (unless it has ended, or ends now).
    private func endStream() throws(VSliceError) {
        guard !streamDone, let host else { return }
        var p = pollfd(fd: child.stdout, events: Int16(POLLIN), revents: 0)
        if child.stdout >= 0, poll(&p, 1, 0) > 0 {
            let more: PipeReader.Outcome
            do { more = try reader.read(from: child.stdout) } catch { throw failed(error.reason) }
            if case .item = more {
                throw deterministic("the processor wrote more after the \(produced) frames of its stream than the next header allows "
                                    + "(a program kept loaded writes exactly its stream's frames, then waits for the next header)" + rateNote)
            }
            if reader.partialBytes > 0 {
                throw deterministic("the processor wrote more after the \(produced) frames of its stream (\(reader.partialBytes) bytes)")
            }
        }
        while child.stderr >= 0 {
            var e = pollfd(fd: child.stderr, events: Int16(POLLIN), revents: 0)
            guard poll(&e, 1, 0) > 0 else { break }
            readStderr()
        }
        persistentCPU = max(0, host.groupCPUSeconds - cpuAtStart)
        streamDone = true
        host.streamDone()
    }

    /// Output frames the lead frames make (at the learnt rate), dropped as they come.
    private var leadOutputs: Int {
        guard !spec.lead.isEmpty else { return 0 }
        return expectedFrames(for: spec.lead.count)
    }

    /// The head frame waits for receiving (there is one, and its time is known) while the queue is full.
    private var mustReceive: Bool { parsed.count >= cap && timeable }

    /// The head frame's time can be told: the input frame it falls in is known, and so is the next one (or
    /// the end) when it falls inside the interval.
    private var timeable: Bool {
        guard !parsed.isEmpty, let rate = learnt?.rate else { return false }
        let j = Int64(delivered) * Int64(rate.den)
        let i = Int(j / Int64(rate.num)), r = j % Int64(rate.num)
        if i >= inputTimes.count { return endTime != nil }
        return r == 0 || i + 1 < inputTimes.count || endTime != nil
    }

    /// Output frame j's time (in the output clock: the input's time base ÷ P).
    private func time(of j: Int) throws(VSliceError) -> Int64 {
        let rate = learnt!.rate
        let p = Int64(rate.num), pos = Int64(j) * Int64(rate.den)
        let i = Int(pos / p), r = pos % p
        guard i < inputTimes.count else {
            throw deterministic("the processor gave more than \(expectedFrames(for: inputTimes.count)) frames for \(inputTimes.count) input frames"
                                + rateNote + (reader.strayText.map { ": \($0)" } ?? drainedSizeHint()))
        }
        guard r > 0 else { return inputTimes[i] * p }
        let next = i + 1 < inputTimes.count ? inputTimes[i + 1] : endTime!
        return inputTimes[i] * p + r * (next - inputTimes[i])
    }

    /// Output frames a processor at the learnt rate gives for `n` input frames: one at every input position
    /// j·Q/P below n.
    package func expectedFrames(for n: Int) -> Int {
        let rate = learnt?.rate ?? Ratio(num: 1, den: 1)
        return Int((Int64(n) * Int64(rate.num) + Int64(rate.den) - 1) / Int64(rate.den))
    }

    /// The program's cost as this run timed it (`ProcessorCost`): its launch until its first frame out, and its
    /// work per source frame from its first frame out to its last. Nil before two frames came out.
    package var timedCost: ProcessorCost? {
        guard let first = firstOutputAt, let last = lastOutputAt, produced >= 2, let rate = learnt?.rate, rate.num > 0 else { return nil }
        let sourceFrames = Double(produced - 1) * Double(rate.den) / Double(rate.num)
        return ProcessorCost(startupSeconds: first - launchedAt, secondsPerFrame: (last - first) / sourceFrames,
                             framesTimed: Int(sourceFrames.rounded()), persistent: spec.settings.isPersistent)
    }

    /// Raw formats: what the bytes the program wrote say of the size of its frames (`RawSizeHint`).
    private func sizeHint(bytes: Int64) -> String {
        guard spec.settings.format != .y4m, let out = learnt, inputTimes.count > 0 else { return "" }
        let given = spec.settings.width.map { "--process-size \($0)x\(spec.settings.height ?? 0)" }
            ?? spec.settings.scale.map { "--process-scale \($0)" }
        return RawSizeHint.describe(bytes: bytes, frames: expectedFrames(for: inputTimes.count), expected: (out.width, out.height),
                                    input: (Int(input.width), Int(input.height)), bytesPerPixel: spec.settings.format == .rgb24 ? 3 : 6,
                                    format: out.pixelFormat, given: given)
    }

    /// Raw formats, once the program gave more frames than its input makes: reads the rest of its output (for
    /// up to 5 s; it has all its input) to tell the size of its frames by the bytes (`sizeHint`).
    private func drainedSizeHint() -> String {
        guard spec.settings.format != .y4m, child.stdout >= 0 else { return "" }
        var total = Int64(produced) * Int64(reader.frameBytes) + Int64(reader.partialBytes)
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = monotonicSeconds() + 5
        while monotonicSeconds() < deadline && !Cancellation.stopRequested {
            var p = pollfd(fd: child.stdout, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 50) <= 0 {
                if child.stderr >= 0 { readStderr() }
                continue
            }
            let n = buf.withUnsafeMutableBytes { Glibc.read(child.stdout, $0.baseAddress!, $0.count) }
            if n > 0 { total += Int64(n); continue }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            return sizeHint(bytes: total)
        }
        return ""
    }

    private var rateNote: String {
        guard let r = learnt?.rate, r.num != r.den else { return "" }
        return " (rate \(r.den == 1 ? "\(r.num)" : "\(r)") frames per input frame)"
    }
}

// MARK: - Frames into the pipe

extension ExternalProcessor {
    /// Queues `frame` (converted to the pipe's format) for the program's stdin, its Y4M header first.
    private func queue(_ frame: Frame) throws(VSliceError) {
        // A program that closed its input takes nothing more: how it ends decides (see `judge`).
        guard child.stdin >= 0 else { return }
        if spec.settings.format == .y4m {
            if !wroteHeader {
                writer.queue(streamHeaderLine)
                for f in spec.lead { try queueFrame(f) }
            }
            writer.queue("FRAME\n")
        }
        wroteHeader = true
        try queuePlanes(frame)
    }

    private func queueFrame(_ frame: Frame) throws(VSliceError) {
        writer.queue("FRAME\n")
        try queuePlanes(frame)
    }

    private func queuePlanes(_ frame: Frame) throws(VSliceError) {
        if let inConverter {
            let converted = Frame()
            try inConverter.convert(frame, into: converted)
            try writer.queue(converted, format: pipeInFormat)
        } else {
            try writer.queue(frame, format: pipeInFormat)
        }
    }

    /// The header line of the stream: the input's, with the stream's own tags (kept loaded).
    private var streamHeaderLine: String {
        guard !spec.streamTags.isEmpty else { return inputHeader.line }
        return String(inputHeader.line.dropLast()) + spec.streamTags.map { " X\($0.0)=\($0.1)" }.joined() + "\n"
    }

    /// The Y4M header vslice writes: the input's size, rate, aspect, chroma and range.
    package var inputHeader: Y4MHeader { Self.header(input: input, pipeFormat: pipeInFormat, fullRange: pipeInFullRange) }

    package static func header(input: FrameGeometry, pipeFormat: AVPixelFormat, fullRange: Bool) -> Y4MHeader {
        let rate = input.frameRate.num > 0 && input.frameRate.den > 0 ? Ratio(input.frameRate) : Ratio(num: 25, den: 1)
        let sar = input.sampleAspect.num > 0 && input.sampleAspect.den > 0 ? Ratio(input.sampleAspect) : Ratio(num: 0, den: 0)
        return Y4MHeader(width: Int(input.width), height: Int(input.height), rate: rate, aspect: sar, interlace: "p",
                         chroma: Y4MChroma.tag(pipeFormat, chromaLocation: input.chromaLocation) ?? "420jpeg",
                         fullRange: fullRange)
    }
}

// MARK: - The pipes

extension ExternalProcessor {
    /// Services the pipes: writes waiting input, reads output and stderr, parses frames, until `done` holds
    /// (or, not `blocking`, once). Checks the segment's stop switch between polls; a program that neither
    /// reads nor writes is found by the stall watchdog (no output frame).
    private func pump(blocking: Bool, until done: () -> Bool) throws(VSliceError) {
        while true {
            if blocking && done() { return }
            try watch.check(operation, path: path)
            var fds: [pollfd] = []
            let writing = !writer.isEmpty && child.stdin >= 0
            if writing { fds.append(pollfd(fd: child.stdin, events: Int16(POLLOUT), revents: 0)) }
            // Output is read while there is room for it, or when input waits behind it.
            if child.stdout >= 0 && (parsed.count < cap || !timeable) {
                fds.append(pollfd(fd: child.stdout, events: Int16(POLLIN), revents: 0))
            }
            if child.stderr >= 0 { fds.append(pollfd(fd: child.stderr, events: Int16(POLLIN), revents: 0)) }
            if child.stdout < 0 {
                try concludeIfEnded()
                if !writing { return }
            }
            if fds.isEmpty { return }
            let n = poll(&fds, nfds_t(fds.count), blocking ? 100 : 0)
            if n < 0 && errno != EINTR {
                throw VSliceError(.processing, operation, path: path, reason: "poll: \(String(cString: strerror(errno)))")
            }
            for p in fds where p.revents != 0 {
                if p.fd == child.stdin { writePending() }
                else if p.fd == child.stdout { try readOutput() }
                else if p.fd == child.stderr { readStderr() }
            }
            if !blocking { return }
        }
    }

    private func writePending() {
        switch writer.write(to: child.stdin) {
        case .full:
            return
        case .broken:
            // EPIPE: the program closed its input. What it put out decides (the count, its exit status).
            brokenPipe = true
            child.closeStdin()
        case .wrote:
            if closing && host == nil { child.closeStdin() }
        }
    }

    /// Reads the frames the program has written, while there is room for them.
    private func readOutput() throws(VSliceError) {
        while child.stdout >= 0 && (parsed.count < cap || !timeable) {
            let outcome: PipeReader.Outcome
            do { outcome = try reader.read(from: child.stdout) } catch { throw failed(error.reason) }
            switch outcome {
            case .wouldBlock:
                return
            case .endOfFile:
                child.closeStdout()
            case .item(.header(let line)):
                try takeHeader(line)
            case .item(.frame(let bytes)):
                let made = try frame(from: bytes)
                if leadDropped < leadOutputs {
                    leadDropped += 1
                    watch.madeProgress()
                    continue
                }
                parsed.append(made)
                produced += 1
                let now = monotonicSeconds()
                if firstOutputAt == nil { firstOutputAt = now }
                lastOutputAt = now
                watch.madeProgress()
            }
        }
    }

    private func readStderr() {
        var buf = [UInt8](repeating: 0, count: 16 << 10)
        let n = buf.withUnsafeMutableBufferPointer { Glibc.read(child.stderr, $0.baseAddress!, $0.count) }
        if n > 0 {
            let data = Data(buf[0..<n])
            log?.write(data)
            for line in stderrTail.add(data) { spec.onStderrLine?(line) }
        } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
            child.closeStderr()
        }
    }

    /// Once the program's output has ended: waits for it to exit (its stderr drained) and judges how it ended.
    private func concludeIfEnded() throws(VSliceError) {
        if ended == nil {
            while !child.hasExited {
                try watch.check("wait for the processor to exit", path: path)
                if child.stderr >= 0 {
                    var p = pollfd(fd: child.stderr, events: Int16(POLLIN), revents: 0)
                    if poll(&p, 1, 50) > 0 { readStderr() }
                } else {
                    usleep(10_000)
                }
            }
            while child.stderr >= 0 { readStderr() }
            ended = child.reap()
            let rest = stderrTail.flush()
            if !rest.isEmpty { spec.onStderrLine?(rest) }
        }
        try judge()
    }

    /// A program that failed (non-zero exit, a signal) is worth another try; one that exited 0 with a wrong
    /// frame count or a cut frame would do it again.
    private func judge() throws(VSliceError) {
        guard let (how, _) = ended else { return }
        if !how.succeeded {
            var e = VSliceError(.processing, operation, path: path,
                                reason: "the processor failed (\(how)) after \(produced) output frames" + stderrTail.said)
            e.everyInput = produced == 0 && stderrTail.cannotStart(how)
            throw e
        }
        let partial = reader.partialBytes
        if partial > 0 {
            if let text = reader.strayText { throw deterministic(text + stderrTail.said) }
            throw deterministic("the processor's output ended inside a frame (\(partial) bytes after frame \(produced))"
                                + sizeHint(bytes: Int64(produced) * Int64(reader.frameBytes) + Int64(partial)) + stderrTail.said)
        }
        if !closing || brokenPipe {
            throw deterministic("the processor ended before reading all its input (\(counts))" + stderrTail.said)
        }
        let want = expectedFrames(for: inputTimes.count)
        if produced != want {
            if let text = reader.strayText { throw deterministic(text + stderrTail.said) }
            throw deterministic("the processor gave \(produced) frames for \(inputTimes.count) input frames, expected \(want)"
                                + rateNote + stderrTail.said)
        }
    }

    /// "10 of 30 frames sent, 10 received, 30 expected": what went each way, and when the whole input is known,
    /// its size and how many frames should have come back for it.
    private var counts: String {
        guard let total = spec.inputFrames else { return "\(inputTimes.count) frames sent, \(produced) received" }
        return "\(inputTimes.count) of \(total) frames sent, \(produced) received, \(expectedFrames(for: total)) expected"
    }

    package func deterministic(_ why: String) -> VSliceError {
        var e = VSliceError(.processing, operation, path: path, reason: why)
        e.deterministic = true
        return e
    }
}

// MARK: - Frames out of the pipe

extension ExternalProcessor {
    /// Reads the program's Y4M header: what it puts out, checked against what the check before the task saw,
    /// or learnt (the check).
    private func takeHeader(_ line: String) throws(VSliceError) {
        let inRate = inputHeader.rate
        let h: Y4MHeader
        do { h = try Y4MHeader.parse(Substring(line)) } catch { throw failed(error.reason) }
        let rate = spec.settings.rate ?? Self.reduced(h.rate, over: inRate) ?? Ratio(num: 1, den: 1)
        if let given = spec.settings.rate.map(Self.lowest), let said = Self.reduced(h.rate, over: inRate), said != given, h.rate.num > 0 {
            throw failed("--process-rate \(given) but the processor's header says F\(h.rate.num):\(h.rate.den) for input F\(inRate.num):\(inRate.den) (\(said))")
        }
        try take(ProcessorOutput(width: h.width, height: h.height, pixelFormat: Self.name(h.pixelFormat), fullRange: h.fullRange,
                                 rate: Self.lowest(rate), identity: h.identity))
    }

    /// Raw frames: their size is --process-size (else --process-scale of the input's, else the input's), their
    /// rate --process-rate (else 1).
    private func learnRaw() throws(VSliceError) {
        let fmt = spec.settings.format == .rgb24 ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_RGB48LE
        guard let size = spec.settings.rawSize(width: Int(input.width), height: Int(input.height)) else {
            throw VSliceError(.usage, operation, path: path, reason: "--process-scale \(spec.settings.scale ?? "") gives no size from "
                              + "\(ProcessorSettings.sizeRange.lowerBound) to \(ProcessorSettings.sizeRange.upperBound) for \(input.width)x\(input.height) frames")
        }
        try take(ProcessorOutput(width: size.width, height: size.height,
                                 pixelFormat: Self.name(fmt), fullRange: nil,
                                 rate: Self.lowest(spec.settings.rate ?? Ratio(num: 1, den: 1))))
    }

    private func take(_ found: ProcessorOutput) throws(VSliceError) {
        if let expected = spec.expected {
            guard expected.width == found.width, expected.height == found.height, expected.pixelFormat == found.pixelFormat else {
                throw failed("the processor put out \(found.width)x\(found.height) \(found.pixelFormat), "
                             + "where the check before the task saw \(expected.width)x\(expected.height) \(expected.pixelFormat)")
            }
            guard expected.rate == found.rate else {
                throw failed("the processor's rate is \(found.rate) frames per input frame, where the check before the task saw \(expected.rate)")
            }
            guard expected.identity == found.identity else {
                throw failed("the processor says it is \(found.identity.map { "'\($0)'" } ?? "nothing") (XVSLICE_ID), where the check "
                             + "before the task heard \(expected.identity.map { "'\($0)'" } ?? "nothing"): its segments would mix two versions")
            }
        } else {
            learnt = found
            try prepareOutput(found)
        }
        reader.expect(frameBytes: Int(av_image_get_buffer_size(Self.format(found.pixelFormat), Int32(found.width), Int32(found.height), 1)))
    }

    /// Sets up the conversion of the program's frames to what the encoder takes, in the input's range.
    private func prepareOutput(_ out: ProcessorOutput) throws(VSliceError) {
        let fmt = Self.format(out.pixelFormat)
        let accepted = spec.encoderFormats
        let wantFull = input.fullRange
        let target: AVPixelFormat
        if accepted.isEmpty || accepted.contains(fmt), !PixelConverter.isRGB(fmt) || accepted.contains(fmt) {
            target = fmt
        } else if accepted.isEmpty || accepted.contains(spec.preferredFormat) {
            target = spec.preferredFormat == AV_PIX_FMT_NONE ? fmt : spec.preferredFormat
        } else {
            var list = accepted + [AV_PIX_FMT_NONE]
            target = list.withUnsafeMutableBufferPointer { avcodec_find_best_pix_fmt_of_list($0.baseAddress, fmt, 0, nil) }
        }
        let outFull = PixelConverter.isRGB(fmt) ? true : (out.fullRange ?? pipeInFullRange)
        outFormat = target
        reader.expect(frameBytes: Int(av_image_get_buffer_size(fmt, Int32(out.width), Int32(out.height), 1)))
        outConverter = PixelConverter.sameLayout(target, fmt) && (PixelConverter.isRGB(fmt) || outFull == wantFull) ? nil
            : try PixelConverter(width: Int32(out.width), height: Int32(out.height), from: fmt, fromFullRange: outFull,
                                 to: target, toFullRange: wantFull, space: input.colorSpace, path: path)
    }

    /// A frame of the program's format over `bytes` (its memory from now on), converted for the encoder.
    private func frame(from bytes: UnsafeMutablePointer<AVBufferRef>) throws(VSliceError) -> Frame {
        let out = learnt!
        let fmt = Self.format(out.pixelFormat)
        let raw = Frame()
        raw.ptr.pointee.width = Int32(out.width)
        raw.ptr.pointee.height = Int32(out.height)
        raw.ptr.pointee.format = fmt.rawValue
        raw.ptr.pointee.buf.0 = bytes
        withUnsafeMutablePointer(to: &raw.ptr.pointee.data) { data in
            withUnsafeMutablePointer(to: &raw.ptr.pointee.linesize) { lines in
                data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { d in
                    lines.withMemoryRebound(to: Int32.self, capacity: 8) { l in
                        _ = av_image_fill_arrays(d, l, bytes.pointee.data, fmt, Int32(out.width), Int32(out.height), 1)
                    }
                }
            }
        }
        // extended_data points at data, as in every video frame FFmpeg makes.
        raw.ptr.pointee.extended_data = (UnsafeMutableRawPointer(raw.ptr) + MemoryLayout<AVFrame>.offset(of: \AVFrame.data)!)
            .assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self)
        let result: Frame
        if let outConverter {
            result = Frame()
            try outConverter.convert(raw, into: result)
        } else {
            result = raw
        }
        let g = output
        result.ptr.pointee.color_range = g.colorRange
        result.ptr.pointee.colorspace = g.colorSpace
        result.ptr.pointee.color_primaries = g.colorPrimaries
        result.ptr.pointee.color_trc = g.colorTransfer
        result.ptr.pointee.chroma_location = g.chromaLocation
        result.ptr.pointee.sample_aspect_ratio = g.sampleAspect
        return result
    }

    /// A broken stream: how the program ended decides whether it is worth another try.
    private func failed(_ why: String) -> VSliceError {
        child.closeStdin()
        child.closeStdout()
        if let e = try? waitForExit(), !e.succeeded {
            return VSliceError(.processing, operation, path: path,
                               reason: "the processor failed (\(e)); its output was cut: \(why)" + stderrTail.said)
        }
        return deterministic(why + stderrTail.said)
    }

    private func waitForExit() throws(VSliceError) -> ChildProcess.Termination {
        if ended == nil {
            let deadline = monotonicSeconds() + 5
            while !child.hasExited && monotonicSeconds() < deadline { try watch.check("wait for the processor", path: path); usleep(10_000) }
            if !child.hasExited { child.kill(); return .signalled(SIGKILL) }
            while child.stderr >= 0 { readStderr() }
            ended = child.reap()
        }
        return ended!.0
    }

    package static func format(_ name: String) -> AVPixelFormat { av_get_pix_fmt(name) }
    package static func name(_ f: AVPixelFormat) -> String { PixelConverter.name(f) }

    /// `out` ÷ `in` in lowest terms, nil when either is unknown or the terms grow past what vslice takes.
    package static func reduced(_ out: Ratio, over input: Ratio) -> Ratio? {
        guard out.num > 0, out.den > 0, input.num > 0, input.den > 0 else { return nil }
        let q = av_div_q(out.av, input.av)
        var n: Int32 = 0, d: Int32 = 0
        _ = av_reduce(&n, &d, Int64(q.num), Int64(q.den), Int64(ProcessorSettings.maxRateTerm))
        return n > 0 && d > 0 ? Ratio(num: n, den: d) : nil
    }

    package static func lowest(_ r: Ratio) -> Ratio {
        var n: Int32 = 0, d: Int32 = 0
        _ = av_reduce(&n, &d, Int64(r.num), Int64(r.den), Int64(Int32.max))
        return Ratio(num: n, den: d)
    }
}

/// The last lines a program wrote on stderr (for errors), split into lines as they come.
package struct StderrTail {
    private var partial = ""
    package private(set) var lines: [String] = []
    package static let keep = 12

    /// Adds a chunk; returns the lines it completed.
    package mutating func add(_ data: Data) -> [String] {
        partial += String(decoding: data, as: UTF8.self)
        var done: [String] = []
        while let r = partial.firstIndex(of: "\n") {
            done.append(String(partial[..<r]))
            partial = String(partial[partial.index(after: r)...])
        }
        if partial.count > 4096 { done.append(partial); partial = "" }
        for l in done where !l.trimmingCharacters(in: .whitespaces).isEmpty {
            lines.append(String(l.prefix(300)))
            if lines.count > Self.keep { lines.removeFirst() }
        }
        return done
    }

    /// What is left without a newline (also kept as a line).
    package mutating func flush() -> String {
        guard !partial.isEmpty else { return "" }
        let rest = partial
        _ = add(Data("\n".utf8))
        return rest
    }

    /// The program could not start, whatever its input: the shell found no command or could not run it (exit
    /// 127, 126), or its last lines say a module, a library or a file it loads is missing.
    package func cannotStart(_ how: ChildProcess.Termination) -> Bool {
        if how == .exited(127) || how == .exited(126) { return true }
        let signs = ["ModuleNotFoundError", "No module named", "ImportError", "can't open file", "command not found",
                     "error while loading shared libraries", "cannot execute", "Permission denied", "No such file or directory"]
        return lines.suffix(3).contains { line in signs.contains { line.contains($0) } }
    }

    /// " — its stderr: …" with the last lines, or nothing.
    package var said: String {
        lines.isEmpty ? "" : " — its last stderr lines: " + lines.suffix(6).joined(separator: " | ")
    }
}
