import Foundation

/// `--process-scale`: the size of a raw-format processor's frames as a function of the size of the frames it
/// reads, so that one command serves inputs of any size (a batch of mixed sizes with a 2× model). Three forms:
/// a factor for both sides (`2`, `1.5`, `3/2`), a fixed size (`1280x720`), or one expression per side over the
/// input's width and height (`iw*2:ih*2`, `iw/2:ih/2`, `iw*3/2:ih+20`; + - * / and parentheses). Sides are
/// rounded to the nearest pixel.
public enum ProcessorScale {
    /// Why `text` is not a scale ("takes …"), or nil when it is one.
    public static func problem(_ text: String) -> String? {
        switch parse(text) {
        case .success: nil
        case .failure(let e): e.why
        }
    }

    /// The size `text` gives for frames of `width`×`height`; nil when it is not a scale or a side is not positive.
    public static func size(_ text: String, width: Int, height: Int) -> (width: Int, height: Int)? {
        guard case .success(let sides) = parse(text),
              let w = sides.0.value(Double(width), Double(height)), let h = sides.1.value(Double(width), Double(height)),
              w.isFinite, h.isFinite, w >= 0.5, h >= 0.5, w < 1e6, h < 1e6 else { return nil }
        return (Int(w.rounded()), Int(h.rounded()))
    }

    struct Problem: Error { var why: String }

    static func parse(_ text: String) -> Result<(Expression, Expression), Problem> {
        let usage = Problem(why: "takes a factor (2, 1.5, 3/2), a size WxH, or W:H over the input's iw and ih (iw*2:ih*2), got '\(text)'")
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let fixed = t.split(separator: "x", omittingEmptySubsequences: false)
        if fixed.count == 2, let w = Int(fixed[0]), let h = Int(fixed[1]) {
            return .success((.number(Double(w)), .number(Double(h))))
        }
        let sides = t.split(separator: ":", omittingEmptySubsequences: false)
        if sides.count == 2 {
            guard let w = Expression.parse(String(sides[0])), let h = Expression.parse(String(sides[1])) else { return .failure(usage) }
            return .success((w, h))
        }
        guard sides.count == 1, let k = Expression.parse(t), !k.usesInput, let v = k.value(1, 1), v > 0 else { return .failure(usage) }
        return .success((.binary("*", .width, .number(v)), .binary("*", .height, .number(v))))
    }

    /// An arithmetic expression over the input's width (`iw`) and height (`ih`).
    indirect enum Expression {
        case number(Double), width, height
        case negate(Expression)
        case binary(Character, Expression, Expression)

        var usesInput: Bool {
            switch self {
            case .number: false
            case .width, .height: true
            case .negate(let e): e.usesInput
            case .binary(_, let a, let b): a.usesInput || b.usesInput
            }
        }

        func value(_ iw: Double, _ ih: Double) -> Double? {
            switch self {
            case .number(let v): return v
            case .width: return iw
            case .height: return ih
            case .negate(let e): return e.value(iw, ih).map { -$0 }
            case .binary(let op, let a, let b):
                guard let x = a.value(iw, ih), let y = b.value(iw, ih) else { return nil }
                switch op {
                case "+": return x + y
                case "-": return x - y
                case "*": return x * y
                default: return y == 0 ? nil : x / y
                }
            }
        }

        /// Parses `text` whole (nil: not an expression).
        static func parse(_ text: String) -> Expression? {
            var p = Parser(chars: Array(text.filter { !$0.isWhitespace }))
            guard let e = p.sum(), p.at == p.chars.count else { return nil }
            return e
        }
    }

    /// Recursive descent: sum := product (± product)*; product := unit (*|/ unit)*; unit := number | iw | ih
    /// | -unit | (sum).
    struct Parser {
        var chars: [Character]
        var at = 0

        mutating func sum() -> Expression? {
            guard var e = product() else { return nil }
            while at < chars.count, chars[at] == "+" || chars[at] == "-" {
                let op = chars[at]
                at += 1
                guard let r = product() else { return nil }
                e = .binary(op, e, r)
            }
            return e
        }

        mutating func product() -> Expression? {
            guard var e = unit() else { return nil }
            while at < chars.count, chars[at] == "*" || chars[at] == "/" {
                let op = chars[at]
                at += 1
                guard let r = unit() else { return nil }
                e = .binary(op, e, r)
            }
            return e
        }

        mutating func unit() -> Expression? {
            guard at < chars.count else { return nil }
            let rest = String(chars[at...])
            if rest.hasPrefix("iw") { at += 2; return .width }
            if rest.hasPrefix("ih") { at += 2; return .height }
            if chars[at] == "-" { at += 1; return unit().map { .negate($0) } }
            if chars[at] == "(" {
                at += 1
                guard let e = sum(), at < chars.count, chars[at] == ")" else { return nil }
                at += 1
                return e
            }
            let start = at
            while at < chars.count, chars[at].isNumber || chars[at] == "." { at += 1 }
            return Double(String(chars[start..<at])).map { .number($0) }
        }
    }
}

/// What the bytes a raw-format processor wrote say about the size of its frames, for the error when they do
/// not fit the size vslice expected: " — it wrote 3456000 bytes for 5 frames: 691200 a frame, where 320x180
/// rgb24 (the input's size) is 172800; it writes 640x360 frames (the input's × 2)? Give --process-scale 2 (or
/// --process-size 640x360)".
public enum RawSizeHint {
    public static func describe(bytes total: Int64, frames: Int, expected: (width: Int, height: Int), input: (width: Int, height: Int),
                                bytesPerPixel: Int, format: String, given: String?) -> String {
        guard frames > 0, bytesPerPixel > 0, input.width > 0, input.height > 0 else { return "" }
        let expectedBytes = Int64(expected.width * expected.height * bytesPerPixel)
        let source = given ?? "the input's size: neither --process-size nor --process-scale is given"
        var s = " — it wrote \(total) bytes for \(frames) frames"
        let advice = "give the size it writes: --process-scale K (of the input's size) or --process-size WxH"
        guard total % Int64(frames) == 0 else {
            return s + ", not a whole number of \(expected.width)x\(expected.height) \(format) frames (\(expectedBytes) bytes each; \(source)); \(advice)"
        }
        let per = total / Int64(frames)
        s += ": \(per) bytes a frame, where \(expected.width)x\(expected.height) \(format) (\(source)) is \(expectedBytes)"
        guard per % Int64(bytesPerPixel) == 0 else { return s + "; \(advice)" }
        let pixels = per / Int64(bytesPerPixel)
        for den in 1...4 {
            let area = Int64(input.width * input.height)
            // k = num/den with (iw·k)(ih·k) = pixels.
            let num = Int64((Double(pixels * Int64(den * den)) / Double(area)).squareRoot().rounded())
            guard num > 0, (Int64(input.width) * num) % Int64(den) == 0, (Int64(input.height) * num) % Int64(den) == 0 else { continue }
            let w = Int64(input.width) * num / Int64(den), h = Int64(input.height) * num / Int64(den)
            guard w * h == pixels else { continue }
            let k = den == 1 ? "\(num)" : "\(num)/\(den)"
            return s + "; it writes \(w)x\(h) frames (the input's size × \(k))? Give --process-scale \(k) (or --process-size \(w)x\(h))"
        }
        return s + " (\(pixels) pixels); \(advice)"
    }
}
