// Ground-truth oracle for Quartz 2.3.2's DailyTimeIntervalTrigger, CalendarIntervalTrigger, and the
// six calendars attached to cron and simple triggers.  Input (stdin), one query per line,
// tab-separated; the first column is the kind:
//   DTI   zone start-ms every-seconds start-time end-time days(1=SUN..7=SAT, comma) repeat-count count calendar
//   CIT   zone start-ms unit every preserve-hour skip-day count calendar
//   CRON  zone start-ms expression count calendar
//   SIMPLE zone start-ms interval-ms repeat-count count calendar
//   CAL   calendar ms[,ms...]        -> for each: included(0/1):next-included-ms
// A calendar is "-" or TYPE;ZONE;ARG with an optional ">"-separated base:
//   holiday;Z;2026-12-25,2026-12-26  annual;Z;12-25,01-01  weekly;Z;SAT,SUN  monthly;Z;1,15
//   daily;Z;08:00:00-17:00:00[!invert]  cron;Z;<expression>
// Output, one line per query: the fire times (epoch ms) that the trigger goes through
// (computeFirstFireTime then triggered() repeatedly), "-" marking the end, or "ERR <message>".
// The default time zone is set to the query's zone (DailyTimeIntervalTrigger has no zone of its own).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Calendar;
import java.util.Date;
import java.util.GregorianCalendar;
import java.util.HashSet;
import java.util.Set;
import java.util.TimeZone;
import org.quartz.DateBuilder.IntervalUnit;
import org.quartz.TimeOfDay;
import org.quartz.impl.calendar.AnnualCalendar;
import org.quartz.impl.calendar.BaseCalendar;
import org.quartz.impl.calendar.CronCalendar;
import org.quartz.impl.calendar.DailyCalendar;
import org.quartz.impl.calendar.HolidayCalendar;
import org.quartz.impl.calendar.MonthlyCalendar;
import org.quartz.impl.calendar.WeeklyCalendar;
import org.quartz.impl.triggers.AbstractTrigger;
import org.quartz.impl.triggers.CalendarIntervalTriggerImpl;
import org.quartz.impl.triggers.CronTriggerImpl;
import org.quartz.impl.triggers.DailyTimeIntervalTriggerImpl;
import org.quartz.impl.triggers.SimpleTriggerImpl;

public final class QuartzTriggerOracle {
    private static final String[] DAYS = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

    static org.quartz.Calendar calendar(String spec) throws Exception {
        if (spec.equals("-")) {
            return null;
        }
        int gt = spec.indexOf('>');
        org.quartz.Calendar base = gt < 0 ? null : calendar(spec.substring(gt + 1));
        String own = gt < 0 ? spec : spec.substring(0, gt);
        String[] p = own.split(";", 3);
        TimeZone tz = TimeZone.getTimeZone(p[1]);
        BaseCalendar cal;
        switch (p[0]) {
            case "holiday": {
                HolidayCalendar c = new HolidayCalendar(base, tz);
                for (String d : p[2].split(",")) {
                    String[] ymd = d.split("-");
                    GregorianCalendar g = new GregorianCalendar(tz);
                    g.clear();
                    g.set(Integer.parseInt(ymd[0]), Integer.parseInt(ymd[1]) - 1, Integer.parseInt(ymd[2]), 12, 0);
                    c.addExcludedDate(g.getTime());
                }
                cal = c;
                break;
            }
            case "annual": {
                AnnualCalendar c = new AnnualCalendar(base, tz);
                for (String d : p[2].split(",")) {
                    String[] md = d.split("-");
                    GregorianCalendar g = new GregorianCalendar(tz);
                    g.clear();
                    g.set(2000, Integer.parseInt(md[0]) - 1, Integer.parseInt(md[1]), 12, 0);
                    c.setDayExcluded(g, true);
                }
                cal = c;
                break;
            }
            case "weekly": {
                WeeklyCalendar c = new WeeklyCalendar(base, tz);
                c.setDayExcluded(Calendar.SATURDAY, false);
                c.setDayExcluded(Calendar.SUNDAY, false);
                for (String d : p[2].split(",")) {
                    for (int i = 0; i < 7; i++) {
                        if (DAYS[i].equals(d)) {
                            c.setDayExcluded(i + 1, true);
                        }
                    }
                }
                cal = c;
                break;
            }
            case "monthly": {
                MonthlyCalendar c = new MonthlyCalendar(base, tz);
                for (String d : p[2].split(",")) {
                    c.setDayExcluded(Integer.parseInt(d), true);
                }
                cal = c;
                break;
            }
            case "daily": {
                String arg = p[2];
                boolean invert = arg.endsWith("!invert");
                String[] range = arg.replace("!invert", "").split("-");
                DailyCalendar c = new DailyCalendar(base, range[0], range[1]);
                c.setTimeZone(tz);
                c.setInvertTimeRange(invert);
                cal = c;
                break;
            }
            case "cron": {
                cal = new CronCalendar(base, p[2], tz);
                break;
            }
            default:
                throw new IllegalArgumentException("unknown calendar " + p[0]);
        }
        return cal;
    }

    static String chain(AbstractTrigger<?> t, org.quartz.Calendar cal, int count) {
        StringBuilder row = new StringBuilder();
        Date next = t.computeFirstFireTime(cal);
        t.setNextFireTime(next);
        for (int i = 0; i < count; i++) {
            if (next == null) {
                row.append(row.length() == 0 ? "-" : " -");
                break;
            }
            if (row.length() > 0) {
                row.append(' ');
            }
            row.append(next.getTime());
            t.triggered(cal);
            next = t.getNextFireTime();
        }
        return row.toString();
    }

    static TimeOfDay tod(String s) {
        String[] p = s.split(":");
        return new TimeOfDay(Integer.parseInt(p[0]), Integer.parseInt(p[1]), Integer.parseInt(p[2]));
    }

    static String query(String[] q) throws Exception {
        String kind = q[0];
        if (kind.equals("CAL")) {
            org.quartz.Calendar cal = calendar(q[1]);
            StringBuilder row = new StringBuilder();
            for (String ms : q[2].split(",")) {
                long t = Long.parseLong(ms);
                if (row.length() > 0) {
                    row.append(' ');
                }
                row.append(cal.isTimeIncluded(t) ? 1 : 0).append(':').append(cal.getNextIncludedTime(t));
            }
            return row.toString();
        }
        TimeZone tz = TimeZone.getTimeZone(q[1]);
        TimeZone.setDefault(tz);
        Date start = new Date(Long.parseLong(q[2]));
        switch (kind) {
            case "DTI": {
                DailyTimeIntervalTriggerImpl t = new DailyTimeIntervalTriggerImpl();
                t.setName("t");
                t.setJobName("j");
                t.setStartTime(start);
                t.setRepeatIntervalUnit(IntervalUnit.SECOND);
                t.setRepeatInterval(Integer.parseInt(q[3]));
                t.setStartTimeOfDay(tod(q[4]));
                t.setEndTimeOfDay(tod(q[5]));
                Set<Integer> days = new HashSet<Integer>();
                for (String d : q[6].split(",")) {
                    days.add(Integer.parseInt(d));
                }
                t.setDaysOfWeek(days);
                t.setRepeatCount(Integer.parseInt(q[7]));
                t.validate();
                return chain(t, calendar(q[9]), Integer.parseInt(q[8]));
            }
            case "CIT": {
                CalendarIntervalTriggerImpl t = new CalendarIntervalTriggerImpl();
                t.setName("t");
                t.setJobName("j");
                t.setStartTime(start);
                t.setTimeZone(tz);
                t.setRepeatIntervalUnit(IntervalUnit.valueOf(q[3]));
                t.setRepeatInterval(Integer.parseInt(q[4]));
                t.setPreserveHourOfDayAcrossDaylightSavings(q[5].equals("1"));
                t.setSkipDayIfHourDoesNotExist(q[6].equals("1"));
                t.validate();
                return chain(t, calendar(q[8]), Integer.parseInt(q[7]));
            }
            case "CRON": {
                CronTriggerImpl t = new CronTriggerImpl();
                t.setName("t");
                t.setJobName("j");
                t.setCronExpression(q[3]);
                t.setTimeZone(tz);
                t.setStartTime(start);
                return chain(t, calendar(q[5]), Integer.parseInt(q[4]));
            }
            case "SIMPLE": {
                SimpleTriggerImpl t = new SimpleTriggerImpl();
                t.setName("t");
                t.setJobName("j");
                t.setStartTime(start);
                t.setRepeatInterval(Long.parseLong(q[3]));
                t.setRepeatCount(Integer.parseInt(q[4]));
                return chain(t, calendar(q[6]), Integer.parseInt(q[5]));
            }
            default:
                throw new IllegalArgumentException("unknown kind " + kind);
        }
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) {
                continue;
            }
            try {
                out.append(query(line.split("\t"))).append('\n');
            } catch (Exception e) {
                out.append("ERR ").append(String.valueOf(e.getMessage()).replace('\n', ' ')).append('\n');
            }
        }
        System.out.print(out);
    }
}
