import CFFmpeg
import Foundation
import Synchronization
import VSliceModel
import VSliceSupport

extension FilterTiming {
    /// Measures `description` on the source's video stream (whose timestamps are `index.pts`): builds the graph
    /// on the source (refusing filters that cannot be cut), runs it over the first frames for its lookahead and
    /// drift, predicts the whole output's times in the background, and searches the memory a cut needs.
    public static func measure(_ description: String, source: String, index: VideoIndex) throws(VSliceError) -> FilterTiming {
        let setup = try Setup(description, source: source, index: index)
        let runner = try setup.runner()
        let pts = setup.pts
        let sample = Array(pts.prefix(300))
        let sampleEnd = pts.count > sample.count ? pts[sample.count] : setup.end
        let whole = try runner.run(pts: sample, end: sampleEnd, from: 0)

        // Output times must keep their distance to the input that produced them (a fixed delay, as tpad's, is
        // fine); a graph that moves frames progressively (setpts=2*PTS) puts them in other segments' intervals.
        let typical = Probe.medianInterval(index.pts)
        if whole.drift > 16 * max(typical, 1) {
            let drift = Double(whole.drift) * av_q2d(setup.timeBase)
            throw setup.usage(String(format: "it moves frames in time (by up to %.2f s more for some frames than for others)", drift))
        }

        // A sample that is the whole source already is the run over every frame with pictures that differ.
        let predicted = PredictedTimes(runner: runner, pts: pts, end: setup.end, offset: setup.offset,
                                       differing: sample.count == pts.count ? whole : nil)
        let memory: (frames: Int, countsFrames: Bool, span: Int64)
        do throws(VSliceError) {
            memory = try searchMemory(runner: runner, sample: sample, sampleEnd: sampleEnd, whole: whole, setup: setup)
        } catch {
            _ = try? predicted.wait()  // no thread outlives the measurement
            throw error
        }
        let interval = setup.interval
        return FilterTiming(lookahead: whole.lookahead, memory: memory.frames, countsFrames: memory.countsFrames,
                            outputPts: try predicted.wait(), frameInterval: interval, offset: setup.offset,
                            rate: interval == nil ? nil : Ratio(setup.rate), lookaheadSpan: whole.lookaheadSpan,
                            memorySpan: memory.span)
    }

    /// The graph built once on the source's real parameters (its filters checked, its output rate read), and
    /// the source's frame times as the graph sees them (counted from the file's start).
    package struct Setup {
        package let description: String
        package let source: String
        package let width: Int32, height: Int32
        package let format: AVPixelFormat
        package let sar: AVRational
        package let timeBase: AVRational
        package let sourceRate: AVRational
        /// The file's start, in the video's time base: subtracted before the graph, added back after.
        package let offset: Int64
        /// The graph's output rate, and the interval between its frames (source time base) when it states one.
        package let rate: AVRational
        package let interval: Int64?
        package let pts: [Int64]
        package let end: Int64

        package init(_ description: String, source: String, index: VideoIndex) throws(VSliceError) {
            self.description = description
            self.source = source
            let input = try InputFile(path: source)
            let st = input.stream(index.streamIndex)
            let par = st.pointee.codecpar.pointee
            width = par.width
            height = par.height
            format = AVPixelFormat(rawValue: par.format)
            sar = par.sample_aspect_ratio
            let tb = st.pointee.time_base
            timeBase = tb
            let start = input.ctx.pointee.start_time
            offset = start == AV_NOPTS ? 0 : av_rescale_q(start, AVRational(num: 1, den: 1_000_000), tb)
            sourceRate = av_guess_frame_rate(input.ctx, st, nil)
            let full = try VideoFilterGraph(description: description, width: par.width, height: par.height, pixelFormat: format,
                                            sampleAspect: par.sample_aspect_ratio, timeBase: tb, frameRate: sourceRate,
                                            outputFormats: [], path: source)
            rate = full.frameRate
            interval = rate.num > 0 && rate.den > 0 ? av_rescale_q(1, AVRational(num: rate.den, den: rate.num), tb) : nil
            let offset = offset
            pts = index.pts.map { $0 - offset }
            end = index.endPts - offset
            for name in full.filterNames {
                if let why = refused[name] { throw usage("'\(name)': \(why)") }
            }
        }

        package func usage(_ why: String) -> VSliceError {
            VSliceError(.usage, "check --vf '\(description)'", reason: "cannot be cut into segments: " + why)
        }

        /// A runner on small frames where the graph accepts them (a filter with absolute sizes may not), else
        /// on frames of the source's size.
        /// The smallest that works counts: the runs cost per pixel (owdenoise: 0.3 ms a 16x16 frame, 2.3 ms at
        /// 64x64, 42 ms at 320x180), and the timing and memory do not depend on the size.
        package func runner() throws(VSliceError) -> Runner {
            for side: Int32 in [16, 64] {
                let small = Runner(description: description, width: side, height: side, format: format, sar: sar,
                                   timeBase: timeBase, rate: sourceRate, path: source)
                if (try? small.run(pts: Array(pts.prefix(2)), end: pts.count > 2 ? pts[2] : end, from: 0)) != nil { return small }
            }
            return Runner(description: description, width: width, height: height, format: format, sar: sar,
                          timeBase: timeBase, rate: sourceRate, path: source)
        }
    }

    /// The whole source's output times, unless they depend on the pictures: two runs over every frame (pictures
    /// that differ, and all alike), each on its own thread while the caller searches the memory (all of it is
    /// serial work before any segment starts; minterpolate on a 10 s clip: 1.5 s in one thread).
    package struct PredictedTimes {
        package final class Times: Sendable { let value = Mutex<[Int64]>([]) }
        package let runs: [(WorkerPool.Joinable, Times)]

        package init(runner: Runner, pts: [Int64], end: Int64, offset: Int64, differing: Runner.Result? = nil) {
            runs = [false, true].map { flat in
                let times = Times()
                if !flat, let differing {
                    times.value.withLock { $0 = differing.outputs.map { $0.pts + offset } }
                    return (WorkerPool.spawn {}, times)
                }
                let thread = WorkerPool.spawn { () throws(VSliceError) in
                    let out = try runner.run(pts: pts, end: end, from: 0, flat: flat).outputs.map { $0.pts + offset }
                    times.value.withLock { $0 = out }
                }
                return (thread, times)
            }
        }

        /// Joins both runs: their times when they agree, nil when the pictures changed them.
        package func wait() throws(VSliceError) -> [Int64]? {
            var results: [[Int64]] = []
            for (thread, times) in runs {
                if let error = thread.wait() { throw error }
                results.append(times.value.withLock { $0 })
            }
            return results[0] == results[1] ? results[0] : nil
        }
    }

    /// The fewest frames before a cut (and whether the graph must be primed with the frame count) for which
    /// the output after the cut equals one pass, at two neighbouring cut points: a graph that counts frames
    /// (every third frame) cannot match at both by chance.
    /// Output frames after a cut compared with one pass's (more than the 32 frames of memory searched at most).
    package static let memoryWindow = 64

    package static func searchMemory(runner: Runner, sample: [Int64], sampleEnd: Int64, whole: Runner.Result,
                             setup: Setup) throws(VSliceError) -> (frames: Int, countsFrames: Bool, span: Int64) {
        let j = sample.count / 2
        // The outputs compared: from the cut over up to `memoryWindow` frames (past the longest memory searched),
        // the cut's run ending its lookahead and two frames after them (before its flush could show).
        let windowEnd = min(sample.count - 1 - whole.lookahead - 2, j + 1 + memoryWindow)
        guard j >= 1 && windowEnd > j + 1 else { return (0, false, 0) }
        let stop = min(sample.count, windowEnd + whole.lookahead + 3)
        let head = Array(sample[..<stop]), headEnd = stop < sample.count ? sample[stop] : sampleEnd
        func window(_ r: Runner.Result, from k: Int) -> [Runner.Output] {
            r.outputs.filter { $0.pts >= sample[k] && $0.pts < sample[windowEnd] }
        }
        for prime in [false, true] {
            for b in [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32] where j - b >= 0 {
                var same = true
                for k in [j, j + 1] where same {
                    let cut = try runner.run(pts: head, end: headEnd, from: k - b, prime: prime)
                    same = window(cut, from: k) == window(whole, from: k)
                }
                if same { return (b, prime, max(sample[j] - sample[j - b], sample[j + 1] - sample[j + 1 - b])) }
            }
        }
        throw setup.usage("its output after a cut differs from one pass even with 32 frames before the cut and the frame count restored (it depends on frames far away)")
    }

    /// Runs a graph over synthetic frames.
    package struct Runner {
        package var description: String
        package var width: Int32, height: Int32
        package var format: AVPixelFormat
        package var sar: AVRational
        package var timeBase: AVRational
        package var rate: AVRational
        package var path: String

        package struct Output: Equatable {
            package var pts: Int64
            package var sum: UInt32
        }
        package struct Result {
            package var outputs: [Output] = []
            package var lookahead = 0
            /// The longest time from an output frame to the last input read when it came out, ticks.
            package var lookaheadSpan: Int64 = 0
            /// For input frames that reappear unchanged: their first output time minus their own time.
            package var moved: [Int: Int64] = [:]
            /// How much more the graph moves some frames than others (10th to 90th percentile), ticks.
            package var drift: Int64 {
                let m = moved.values.sorted()
                guard m.count >= 10 else { return 0 }
                return m[m.count * 9 / 10] - m[m.count / 10]
            }
        }

        /// Feeds frames `from..<pts.count` (frame i a flat grey that depends on i, or all the same grey when
        /// `flat`), after `from` blank frames timed before them when `prime`; outputs in the source time base.
        package func run(pts: [Int64], end: Int64, from: Int, prime: Bool = false, flat: Bool = false) throws(VSliceError) -> Result {
            let graph = try VideoFilterGraph(description: description, width: width, height: height, pixelFormat: format,
                                             sampleAspect: sar, timeBase: timeBase, frameRate: rate, outputFormats: [], path: path)
            let gtb = graph.timeBase
            let frame = Frame(), out = Frame()
            var result = Result()
            /// A frame of noise seeded by `seed` (each input its own picture, which no mix of others equals),
            /// or flat grey when `seed` is nil.
            func fill(_ seed: Int?, pts: Int64) throws(VSliceError) {
                frame.unref()
                frame.ptr.pointee.width = width
                frame.ptr.pointee.height = height
                frame.ptr.pointee.format = format.rawValue
                frame.ptr.pointee.sample_aspect_ratio = sar
                try ffCheck(av_frame_get_buffer(frame.ptr, 0), "allocate frame", path: path)
                withUnsafeMutablePointer(to: &frame.ptr.pointee.buf) { bufs in
                    bufs.withMemoryRebound(to: UnsafeMutablePointer<AVBufferRef>?.self, capacity: 8) { b in
                        var x = UInt32(truncatingIfNeeded: (seed ?? 0) &* 2654435761 &+ 12345)
                        for p in 0..<8 {
                            guard let buf = b[p] else { continue }
                            guard seed != nil else { memset(buf.pointee.data, 128, buf.pointee.size); continue }
                            for k in 0..<buf.pointee.size {
                                x = x &* 1664525 &+ 1013904223
                                buf.pointee.data[k] = UInt8(truncatingIfNeeded: x >> 24)
                            }
                        }
                    }
                }
                frame.pts = pts
            }
            var pushed = -1
            var inputWithSum: [UInt32: Int] = [:]
            func drain(eof: Bool) throws(VSliceError) {
                while try graph.pull(out) == .ok {
                    let t = av_rescale_q(out.pts, gtb, timeBase)
                    let sum = Runner.checksum(out)
                    result.outputs.append(Output(pts: t, sum: sum))
                    if !eof && pushed >= from {
                        var ahead = 0
                        var k = pushed
                        while k >= from && pts[k] > t { ahead += 1; k -= 1 }
                        result.lookahead = max(result.lookahead, ahead)
                        result.lookaheadSpan = max(result.lookaheadSpan, pts[pushed] - t)
                    }
                    // The first output showing an input frame unchanged: how far the graph moved that frame.
                    if let i = inputWithSum[sum], result.moved[i] == nil { result.moved[i] = t - pts[i] }
                }
            }
            if prime && from > 0 {
                for k in 0..<from {
                    try fill(nil, pts: pts[from] - Int64(from - k))
                    try graph.push(frame)
                    try drain(eof: false)
                }
            }
            for i in from..<pts.count {
                try fill(flat ? nil : i, pts: pts[i])
                inputWithSum[Runner.checksum(frame)] = i
                try graph.push(frame)
                pushed = i
                try drain(eof: false)
            }
            try graph.close(at: end)
            try drain(eof: true)
            return result
        }

        /// Adler-32 of the visible picture (padding excluded).
        package static func checksum(_ f: Frame) -> UInt32 {
            let p = f.ptr.pointee
            let fmt = AVPixelFormat(rawValue: p.format)
            guard let desc = av_pix_fmt_desc_get(fmt) else { return 0 }
            var sum: UInt32 = 1
            withUnsafePointer(to: p.data) { dataTuple in
                dataTuple.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { data in
                    withUnsafePointer(to: p.linesize) { lsTuple in
                        lsTuple.withMemoryRebound(to: Int32.self, capacity: 8) { ls in
                            for plane in 0..<4 {
                                guard let base = data[plane] else { continue }
                                let bytes = Int(av_image_get_linesize(fmt, p.width, Int32(plane)))
                                guard bytes > 0 else { continue }
                                let h = plane == 1 || plane == 2 ? -((-Int(p.height)) >> Int(desc.pointee.log2_chroma_h)) : Int(p.height)
                                for row in 0..<h { sum = av_adler32_update(sum, base + row * Int(ls[plane]), bytes) }
                            }
                        }
                    }
                }
            }
            return sum
        }
    }
}
