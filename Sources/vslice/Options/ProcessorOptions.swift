import ArgumentParser
import Foundation
import VSliceKit

/// `--process` and its options: an external program every segment's frames go through.
struct ProcessorOptions: ParsableArguments {
    @Option(name: .customLong("process"), help: ArgumentHelp(
        "A program each segment's frames go through: it reads frames on stdin and writes frames on stdout (run with /bin/sh -c).",
        discussion: """
            vslice writes every segment's frames — buffer frames (--overlap) included, after --vf — to its stdin and \
            encodes what it writes on stdout, the buffer frames' share dropped. It runs once on the first frames \
            before any work (a broken one is exit 2). Its environment tells it the segment (VSLICE_SEGMENT, \
            VSLICE_FIRST_FRAME, VSLICE_FRAMES, VSLICE_BUFFER_BEFORE/AFTER…), the frames (VSLICE_WIDTH, VSLICE_HEIGHT, \
            VSLICE_PIX_FMT, VSLICE_COLOR_*) and its GPU (VSLICE_GPU). Its stderr goes to seg-NNNNN.process.log in \
            the work folder (-v shows it). A non-zero exit is retried; a wrong frame count is not. Its stdout \
            carries frames only: a program must log to stderr (print(..., file=sys.stderr)); text on stdout is \
            named as such.
            """,
        valueName: "command"))
    var command: String?

    @Option(name: .customLong("process-format"), help: "How frames cross the pipes: y4m (the source's pixel format, with headers), rgb24, rgb48le (raw).")
    var format: ProcessFormat = .y4m

    @Option(name: .customLong("process-rate"), help: "Frames the processor writes per input frame: an integer or a fraction (2, 5/2); y4m: read from the headers when not given.")
    var rate: String?

    @Option(name: .customLong("process-size"), help: "Raw formats: the size of the frames the processor writes, WxH (default: the input's).")
    var size: String?

    @Option(name: .customLong("process-scale"), help: ArgumentHelp(
        "Raw formats: the size of the processor's frames from the input's: a factor (2, 1.5, 3/2), WxH, or W:H over iw and ih (iw*2:ih*2).",
        discussion: "Worked out for each input, so one batch serves inputs of mixed sizes (a 2x model: --process-scale 2).",
        valueName: "scale"))
    var scale: String?

    @Option(name: .customLong("process-deps"), parsing: .upToNextOption, help: ArgumentHelp(
        "Files or folders the processor runs from beyond its command line and the folders of the files it names (weights, modules elsewhere): hashed into the task's settings, so a changed one refuses a resume.",
        valueName: "path"))
    var deps: [String] = []

    @Option(help: "GPU devices for the processor, one per concurrent segment (0,1): sets VSLICE_GPU and CUDA_VISIBLE_DEVICES.")
    var gpus: String?

    @Option(name: .customLong("slots-per-gpu"), help: ArgumentHelp(
        "With --gpus: job slots per device (default 1); --jobs defaults to devices × this.",
        discussion: "With --process-persistent, one program is kept loaded per slot: K programs per device.",
        valueName: "K"))
    var slotsPerGpu: Int?

    @Flag(name: .customLong("process-persistent"), help: ArgumentHelp(
        "Keep the processor loaded: one program per job slot (per GPU with --gpus; --slots-per-gpu K for K) takes every segment it is given (y4m only).",
        discussion: """
            The program is started once per job slot and reads, on the same stdin, one YUV4MPEG2 stream per segment: a header line carrying XVSLICE_SEGMENT=i, XVSLICE_FRAMES=n (the frames that follow, buffer frames included), XVSLICE_BUFFER_BEFORE=b and XVSLICE_BUFFER_AFTER=a, then n frames. For each stream it must write one Y4M stream on stdout — a header, then all of that segment's output frames (n, or n times --process-rate) — before it reads the next header, and exit 0 at the end of its input. A program that dies is started again for the next segment. The check before any work sends it two short streams: one that cannot take a second header is refused (exit 2). Not with --vf. examples/ has the persistent forms of its processors (examples/y4m.py: y4m.streams()).
            """))
    var persistent = false

    func settings() throws -> ProcessorSettings? {
        guard let command else {
            if rate != nil || size != nil || scale != nil || !deps.isEmpty || format != .y4m || persistent {
                throw VSliceError(.usage, "check options",
                                  reason: "--process-format, --process-rate, --process-size, --process-scale, --process-deps and --process-persistent need --process")
            }
            return nil
        }
        var p = ProcessorSettings(command: command)
        p.format = format
        if persistent { p.persistent = true }
        p.scale = scale?.trimmingCharacters(in: .whitespaces)
        p.deps = deps
        if let rate {
            let parts = rate.split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let n = Int32(parts[0]), parts.count == 1 || Int32(parts[1]) != nil else {
                throw VSliceError(.usage, "check options", reason: "--process-rate takes an integer or a fraction P/Q, got '\(rate)'")
            }
            p.rate = Ratio(num: n, den: parts.count == 2 ? Int32(parts[1])! : 1)
        }
        if let size {
            let parts = size.lowercased().split(separator: "x", omittingEmptySubsequences: false)
            guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]) else {
                throw VSliceError(.usage, "check options", reason: "--process-size takes WxH (1920x1080), got '\(size)'")
            }
            p.width = w
            p.height = h
        }
        return p
    }

    /// The device of each job slot, in order: every device once, then again for each further slot per device
    /// (`--slots-per-gpu 2` on 0,1: 0,1,0,1), so that fewer segments than slots still spread over the devices.
    func gpuList() throws -> [String] {
        guard let gpus else {
            if slotsPerGpu != nil { throw VSliceError(.usage, "check options", reason: "--slots-per-gpu needs --gpus") }
            return []
        }
        let devices = gpus.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let k = slotsPerGpu ?? 1
        guard (1...64).contains(k) else {
            throw VSliceError(.usage, "check options", reason: "--slots-per-gpu takes 1 to 64, got \(k)")
        }
        return (0..<k).flatMap { _ in devices }
    }
}

extension ProcessFormat: ExpressibleByArgument {}
