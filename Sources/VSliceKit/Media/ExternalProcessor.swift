import CFFmpeg
import Foundation

/// How one external processor runs (`--process`), for one segment or for the check before any work.
struct ProcessorSpec {
    var settings: ProcessorSettings
    /// What it runs for, in messages: "segment 3", "check".
    var label: String
    /// What every segment's program must put out; nil while it is being learnt (the check).
    var expected: ProcessorOutput?
    /// The program's whole environment.
    var environment: [String: String]
    /// Where its stderr is appended (the segment's log in the work folder), if anywhere.
    var logPath: String?
    /// Each line of its stderr as it comes (`-v` shows them).
    var onStderrLine: (@Sendable (String) -> Void)? = nil
    /// Pixel formats the encoder takes (empty: any), and the one to prefer (the source's).
    var encoderFormats: [AVPixelFormat] = []
    var preferredFormat: AVPixelFormat = AV_PIX_FMT_NONE
}

/// An external program as a pipeline stage (`--process CMD`): `/bin/sh -c CMD` in a process group of its own,
/// the segment's frames written to its stdin (Y4M or raw RGB), its frames read from its stdout. Both pipes are
/// serviced by one `poll` loop on the segment's thread, so neither side can block the other, and at most a few
/// frames wait here (the stage refuses input while its output waits to be received). The program's output
/// frame j is timed at input position j·Q/P (rate P/Q): inside the input frame it falls in, in equal steps, on
/// a clock P times finer than the input's — VFR sources keep their rhythm, and k frames split each interval.
final class ExternalProcessor: FrameProcessor {
    let spec: ProcessorSpec
    private let input: FrameGeometry
    private let watch: WorkWatch
    private let path: String
    private let child: ChildProcess
    /// Input frames' conversion to the pipe's format (nil: they cross as they are).
    private let inConverter: PixelConverter?
    private let pipeInFormat: AVPixelFormat
    private let pipeInFullRange: Bool
    /// What the program puts out, and its conversion to what the encoder takes.
    private(set) var learnt: ProcessorOutput?
    private var outConverter: PixelConverter?
    private var outFormat: AVPixelFormat = AV_PIX_FMT_NONE

    // The pipes.
    private var pending: [UInt8] = []
    private var pendingOffset = 0
    private var wroteHeader = false
    private var headerRead = false
    private var readBuffer = [UInt8](repeating: 0, count: 1 << 20)
    private var closing = false
    private var inbox: [UInt8] = []
    private var inboxOffset = 0
    private var stderrTail = StderrTail()
    private var log: FileHandle?

    // Timing and counts.
    private var inputTimes: [Int64] = []
    private var endTime: Int64?
    private var parsed: [Frame] = []
    private var produced = 0
    private var delivered = 0
    private var ended: (ChildProcess.Termination, cpu: Double)?
    private var brokenPipe = false
    /// Frames waiting here at most before input is refused.
    private let cap: Int

    /// CPU seconds the program used (known once it has ended).
    var cpuSeconds: Double { ended?.cpu ?? 0 }
    var framesIn: Int { inputTimes.count }
    var framesOut: Int { produced }

    /// Starts the program for frames of `input` geometry.
    init(_ spec: ProcessorSpec, input: FrameGeometry, watch: WorkWatch, path: String) throws(VSliceError) {
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
        let plain = [AV_PIX_FMT_YUVJ420P: AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUVJ422P: AV_PIX_FMT_YUV422P,
                     AV_PIX_FMT_YUVJ444P: AV_PIX_FMT_YUV444P][input.pixelFormat]
        inConverter = pipeInFormat == input.pixelFormat || pipeInFormat == plain ? nil
            : try PixelConverter(width: input.width, height: input.height, from: input.pixelFormat, fromFullRange: input.fullRange,
                                 to: pipeInFormat, toFullRange: pipeInFullRange, space: input.colorSpace, path: path)
        if let logPath = spec.logPath {
            if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
            log = FileHandle(forWritingAtPath: logPath)
            _ = try? log?.seekToEnd()
        }
        let told = Self.environment(input: input, format: spec.settings.format, pipeFormat: pipeInFormat, fullRange: pipeInFullRange)
        child = try ChildProcess(command: spec.settings.command, environment: spec.environment.merging(told) { $1 })
        if let expected = spec.expected { try prepareOutput(expected) }
    }

    deinit {
        child.kill()
        try? log?.close()
    }

    /// Stops the program now (its whole process group).
    func kill() { child.kill() }

    /// "run the processor (segment 3)", for errors.
    var operation: String { "run the processor (\(spec.label))" }

    private static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// What the program is told of the frames it reads: their size, rate, pixel format and colour.
    private static func environment(input: FrameGeometry, format: ProcessFormat, pipeFormat: AVPixelFormat,
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

    var output: FrameGeometry {
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

    func send(_ frame: Frame) throws(VSliceError) -> Bool {
        if pendingOffset < pending.count {
            try pump(blocking: true) { self.pendingOffset >= self.pending.count || self.mustReceive }
            if pendingOffset < pending.count { return false }
        }
        if mustReceive { return false }
        inputTimes.append(frame.pts)
        try queue(frame)
        try pump(blocking: true) { self.pendingOffset >= self.pending.count || self.mustReceive }
        return true
    }

    func finish(end: Int64) throws(VSliceError) {
        endTime = end
        closing = true
        if pendingOffset >= pending.count { child.closeStdin() }
    }

    func receive(_ frame: Frame) throws(VSliceError) -> CodecResult {
        if !closing {
            try pump(blocking: false) { true }
        } else {
            try pump(blocking: true) { self.timeable || self.child.stdout < 0 }
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
                                + rateNote)
        }
        guard r > 0 else { return inputTimes[i] * p }
        let next = i + 1 < inputTimes.count ? inputTimes[i + 1] : endTime!
        return inputTimes[i] * p + r * (next - inputTimes[i])
    }

    /// Output frames a processor at the learnt rate gives for `n` input frames: one at every input position
    /// j·Q/P below n.
    func expectedFrames(for n: Int) -> Int {
        let rate = learnt?.rate ?? Ratio(num: 1, den: 1)
        return Int((Int64(n) * Int64(rate.num) + Int64(rate.den) - 1) / Int64(rate.den))
    }

    private var rateNote: String {
        guard let r = learnt?.rate, r.num != r.den else { return "" }
        return " (rate \(r.den == 1 ? "\(r.num)" : "\(r)") frames per input frame)"
    }
}

// MARK: - Frames into the pipe

extension ExternalProcessor {
    /// Appends `frame` (converted to the pipe's format) to the bytes waiting for the program's stdin.
    private func queue(_ frame: Frame) throws(VSliceError) {
        if pendingOffset >= pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingOffset = 0
        }
        if !wroteHeader && spec.settings.format == .y4m {
            pending.append(contentsOf: Array(inputHeader.line.utf8))
        }
        wroteHeader = true
        if spec.settings.format == .y4m { pending.append(contentsOf: Array("FRAME\n".utf8)) }
        var source = frame
        if let inConverter {
            let converted = Frame()
            try inConverter.convert(frame, into: converted)
            source = converted
        }
        let f = source.ptr.pointee
        let size = Int(av_image_get_buffer_size(pipeInFormat, f.width, f.height, 1))
        let start = pending.count
        pending.append(contentsOf: repeatElement(0, count: size))
        let written = pending.withUnsafeMutableBufferPointer { buf in
            withUnsafePointer(to: source.ptr.pointee.data) { data in
                withUnsafePointer(to: source.ptr.pointee.linesize) { lines in
                    data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { d in
                        lines.withMemoryRebound(to: Int32.self, capacity: 8) { l in
                            av_image_copy_to_buffer(buf.baseAddress! + start, Int32(size), d, l, pipeInFormat, f.width, f.height, 1)
                        }
                    }
                }
            }
        }
        try ffCheck(written, "copy a frame to the processor", path: path)
    }

    /// The Y4M header vslice writes: the input's size, rate, aspect, chroma and range.
    var inputHeader: Y4MHeader { Self.header(input: input, pipeFormat: pipeInFormat, fullRange: pipeInFullRange) }

    static func header(input: FrameGeometry, pipeFormat: AVPixelFormat, fullRange: Bool) -> Y4MHeader {
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
            try parseInbox()
            if blocking && done() { return }
            try watch.check(operation, path: path)
            var fds: [pollfd] = []
            let writing = pendingOffset < pending.count && child.stdin >= 0
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
                if p.fd == child.stdin { try writePending() }
                else if p.fd == child.stdout { readOutput() }
                else if p.fd == child.stderr { readStderr() }
            }
            if !blocking { try parseInbox(); return }
        }
    }

    private func writePending() throws(VSliceError) {
        while pendingOffset < pending.count {
            let n = pending.withUnsafeBufferPointer { Glibc.write(child.stdin, $0.baseAddress! + pendingOffset, pending.count - pendingOffset) }
            if n > 0 { pendingOffset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            // EPIPE: the program closed its input. What it put out decides (the count, its exit status).
            brokenPipe = true
            pendingOffset = pending.count
            child.closeStdin()
            return
        }
        if closing { child.closeStdin() }
    }

    private func readOutput() {
        if inboxOffset > 0 && inboxOffset >= inbox.count / 2 {
            inbox.removeFirst(inboxOffset)
            inboxOffset = 0
        }
        let n = readBuffer.withUnsafeMutableBufferPointer { Glibc.read(child.stdout, $0.baseAddress!, $0.count) }
        if n > 0 { inbox.append(contentsOf: readBuffer[0..<n]) }
        else if n == 0 || (errno != EAGAIN && errno != EINTR) { child.closeStdout() }
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
            throw VSliceError(.processing, operation, path: path,
                              reason: "the processor failed (\(how)) after \(produced) output frames" + stderrTail.said)
        }
        let partial = inbox.count - inboxOffset
        if partial > 0 {
            throw deterministic("the processor's output ended inside a frame (\(partial) bytes after frame \(produced))" + stderrTail.said)
        }
        if !closing || brokenPipe {
            throw deterministic("the processor ended before reading all its input (\(inputTimes.count) frames sent, \(produced) received)"
                                + stderrTail.said)
        }
        let want = expectedFrames(for: inputTimes.count)
        if produced != want {
            throw deterministic("the processor gave \(produced) frames for \(inputTimes.count) input frames, expected \(want)"
                                + rateNote + stderrTail.said)
        }
    }

    func deterministic(_ why: String) -> VSliceError {
        var e = VSliceError(.processing, operation, path: path, reason: why)
        e.deterministic = true
        return e
    }
}

// MARK: - Frames out of the pipe

extension ExternalProcessor {
    /// Turns the complete frames in the inbox into frames of the encoder's format.
    private func parseInbox() throws(VSliceError) {
        while true {
            let available = inbox.count - inboxOffset
            if learnt == nil || (spec.settings.format == .y4m && !headerRead) {
                guard try parseHeader() else { return }
                continue
            }
            let out = learnt!
            let frameBytes = Int(av_image_get_buffer_size(Self.format(out.pixelFormat), Int32(out.width), Int32(out.height), 1))
            var skip = 0
            if spec.settings.format == .y4m {
                guard let nl = newline(limit: Y4MHeader.maxLine) else {
                    if available >= Y4MHeader.maxLine { throw failed("a frame does not start with FRAME") }
                    return
                }
                let line = String(decoding: inbox[inboxOffset..<nl], as: UTF8.self)
                guard line.hasPrefix("FRAME") else { throw failed("a frame does not start with FRAME ('\(line.prefix(40))')") }
                if line.split(separator: " ").dropFirst().contains(where: { ["W", "H", "C"].contains($0.first) }) {
                    throw failed("the processor changed its frame size or format mid-stream ('\(line.prefix(60))')")
                }
                skip = nl + 1 - inboxOffset
            }
            guard available >= skip + frameBytes else { return }
            let frame = try frameFromInbox(at: inboxOffset + skip, bytes: frameBytes)
            inboxOffset += skip + frameBytes
            produced += 1
            watch.madeProgress()
            parsed.append(frame)
        }
    }

    /// Reads the program's Y4M header (or, for raw formats, sets what its frames are); false: not all there yet.
    private func parseHeader() throws(VSliceError) -> Bool {
        var found: ProcessorOutput
        let inRate = inputHeader.rate
        switch spec.settings.format {
        case .y4m:
            guard let nl = newline(limit: Y4MHeader.maxLine) else {
                if inbox.count - inboxOffset >= Y4MHeader.maxLine { throw failed("the output does not start with a YUV4MPEG2 header") }
                return false
            }
            let h: Y4MHeader
            do { h = try Y4MHeader.parse(Substring(String(decoding: inbox[inboxOffset..<nl], as: UTF8.self))) } catch { throw failed(error.reason) }
            inboxOffset = nl + 1
            headerRead = true
            let rate = spec.settings.rate ?? Self.reduced(h.rate, over: inRate) ?? Ratio(num: 1, den: 1)
            if let given = spec.settings.rate.map(Self.lowest), let said = Self.reduced(h.rate, over: inRate), said != given, h.rate.num > 0 {
                throw failed("--process-rate \(given) but the processor's header says F\(h.rate.num):\(h.rate.den) for input F\(inRate.num):\(inRate.den) (\(said))")
            }
            found = ProcessorOutput(width: h.width, height: h.height, pixelFormat: Self.name(h.pixelFormat), fullRange: h.fullRange, rate: rate)
        case .rgb24, .rgb48le:
            let fmt = spec.settings.format == .rgb24 ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_RGB48LE
            found = ProcessorOutput(width: spec.settings.width ?? Int(input.width), height: spec.settings.height ?? Int(input.height),
                                    pixelFormat: Self.name(fmt), fullRange: nil, rate: spec.settings.rate ?? Ratio(num: 1, den: 1))
        }
        found.rate = Self.lowest(found.rate)
        if let expected = spec.expected {
            guard expected.width == found.width, expected.height == found.height, expected.pixelFormat == found.pixelFormat else {
                throw failed("the processor put out \(found.width)x\(found.height) \(found.pixelFormat), "
                             + "where the check before the task saw \(expected.width)x\(expected.height) \(expected.pixelFormat)")
            }
            guard expected.rate == found.rate else {
                throw failed("the processor's rate is \(found.rate) frames per input frame, where the check before the task saw \(expected.rate)")
            }
        } else {
            learnt = found
            try prepareOutput(found)
        }
        return true
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
        let plain = [AV_PIX_FMT_YUVJ420P: AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUVJ422P: AV_PIX_FMT_YUV422P,
                     AV_PIX_FMT_YUVJ444P: AV_PIX_FMT_YUV444P][target]
        let outFull = PixelConverter.isRGB(fmt) ? true : (out.fullRange ?? pipeInFullRange)
        outFormat = target
        outConverter = (target == fmt || plain == fmt) && (PixelConverter.isRGB(fmt) || outFull == wantFull) ? nil
            : try PixelConverter(width: Int32(out.width), height: Int32(out.height), from: fmt, fromFullRange: outFull,
                                 to: target, toFullRange: wantFull, space: input.colorSpace, path: path)
    }

    /// A frame of the program's format from `bytes` bytes at `offset` of the inbox, converted for the encoder.
    private func frameFromInbox(at offset: Int, bytes: Int) throws(VSliceError) -> Frame {
        let out = learnt!
        let fmt = Self.format(out.pixelFormat)
        let raw = Frame()
        raw.ptr.pointee.width = Int32(out.width)
        raw.ptr.pointee.height = Int32(out.height)
        raw.ptr.pointee.format = fmt.rawValue
        try ffCheck(av_frame_get_buffer(raw.ptr, 0), "allocate frame", path: path)
        var planes = [UnsafePointer<UInt8>?](repeating: nil, count: 4)
        var lines = [Int32](repeating: 0, count: 4)
        inbox.withUnsafeBufferPointer { buf in
            var p = [UnsafeMutablePointer<UInt8>?](repeating: nil, count: 4)
            _ = av_image_fill_arrays(&p, &lines, buf.baseAddress! + offset, fmt, Int32(out.width), Int32(out.height), 1)
            for k in 0..<4 { planes[k] = p[k].map { UnsafePointer($0) } }
            withUnsafeMutablePointer(to: &raw.ptr.pointee.data) { data in
                withUnsafeMutablePointer(to: &raw.ptr.pointee.linesize) { dl in
                    data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { d in
                        dl.withMemoryRebound(to: Int32.self, capacity: 8) { l in
                            av_image_copy(d, l, &planes, lines, fmt, Int32(out.width), Int32(out.height))
                        }
                    }
                }
            }
        }
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

    /// The inbox's next newline, searched in its first `limit` bytes.
    private func newline(limit: Int) -> Int? {
        let end = min(inbox.count, inboxOffset + limit)
        var k = inboxOffset
        while k < end { if inbox[k] == 0x0A { return k }; k += 1 }
        return nil
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

    static func format(_ name: String) -> AVPixelFormat { av_get_pix_fmt(name) }
    static func name(_ f: AVPixelFormat) -> String { PixelConverter.name(f) }

    /// `out` ÷ `in` in lowest terms, nil when either is unknown or the terms grow past what vslice takes.
    static func reduced(_ out: Ratio, over input: Ratio) -> Ratio? {
        guard out.num > 0, out.den > 0, input.num > 0, input.den > 0 else { return nil }
        let q = av_div_q(out.av, input.av)
        var n: Int32 = 0, d: Int32 = 0
        _ = av_reduce(&n, &d, Int64(q.num), Int64(q.den), Int64(ProcessorSettings.maxRateTerm))
        return n > 0 && d > 0 ? Ratio(num: n, den: d) : nil
    }

    static func lowest(_ r: Ratio) -> Ratio {
        var n: Int32 = 0, d: Int32 = 0
        _ = av_reduce(&n, &d, Int64(r.num), Int64(r.den), Int64(Int32.max))
        return Ratio(num: n, den: d)
    }
}

/// The last lines a program wrote on stderr (for errors), split into lines as they come.
struct StderrTail {
    private var partial = ""
    private(set) var lines: [String] = []
    static let keep = 12

    /// Adds a chunk; returns the lines it completed.
    mutating func add(_ data: Data) -> [String] {
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
    mutating func flush() -> String {
        guard !partial.isEmpty else { return "" }
        let rest = partial
        _ = add(Data("\n".utf8))
        return rest
    }

    /// " — its stderr: …" with the last lines, or nothing.
    var said: String {
        lines.isEmpty ? "" : " — its last stderr lines: " + lines.suffix(6).joined(separator: " | ")
    }
}
