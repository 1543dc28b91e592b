// What Foundation asks of ICU, printed: packaging/check-icu-data runs it with the full and the trimmed ICU data.
import Foundation
let d = Date(timeIntervalSince1970: 1_764_685_800.25)
let f = DateFormatter(); f.locale = Locale(identifier: "en_US_POSIX"); f.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS zzz"; f.timeZone = TimeZone(identifier: "UTC")
print("posix-utc:", f.string(from: d))
f.timeZone = TimeZone(identifier: "Europe/Berlin"); print("posix-berlin:", f.string(from: d))
f.timeZone = TimeZone(identifier: "America/Los_Angeles"); print("posix-la:", f.string(from: d))
print("iso-parse:", ISO8601DateFormatter().date(from: "2026-12-02T14:30:00Z")!.timeIntervalSince1970)
print("iso-format:", ISO8601DateFormatter().string(from: d))
print("fmt:", String(format: "%.2f %5d %@ %08.3f", 3.14159, 42, "x", -1.5))
let g = DateFormatter(); g.dateStyle = .medium; g.timeStyle = .medium; g.timeZone = TimeZone(identifier: "UTC")
for l in ["en_US", "en_GB", "de_DE", "fr_FR"] { g.locale = Locale(identifier: l); print("medium-\(l):", g.string(from: d)) }
print("tz-berlin-offset:", TimeZone(identifier: "Europe/Berlin")!.secondsFromGMT(for: d), TimeZone(identifier: "Europe/Berlin")!.abbreviation(for: d) ?? "-")
print("cal:", Calendar(identifier: .gregorian).component(.weekday, from: d))
print("upper:", "straße ǅ".uppercased(), "cmp:", "a".compare("B", options: .caseInsensitive).rawValue)
print("err:", (NSError(domain: NSPOSIXErrorDomain, code: 2)).localizedDescription)
print("num:", 1234567.891.formatted(), (0.5).formatted(.percent))
